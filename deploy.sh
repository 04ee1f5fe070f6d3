#!/usr/bin/env bash
# classcal's one entry point for running and deploying:
#   ./deploy.sh local [--once] [--auth-mode oauth|service_account [--with-key]]
#                                the whole backend on this machine (emulators + Google sandbox)
#   ./deploy.sh package          build/<function>/ and build/<function>.zip for every function
#   ./deploy.sh plan | apply     package, then Terraform against $GOOGLE_CLOUD_PROJECT
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

fail() {
  echo "deploy.sh: $*" >&2
  exit 1
}

# The packager needs only the standard library: the venv's Python when there is one.
package_functions() {
  local python=python3
  [ -x .venv/bin/python ] && python=.venv/bin/python
  command -v "$python" >/dev/null 2>&1 || fail "python3 is needed to package the functions"
  "$python" scripts/package.py "$@"
}

# Terraform variables taken from the environment (the names the functions use).
# Each may instead come from infra/terraform.tfvars or TF_VAR_<name>.
TF_FROM_ENV=(
  "project_id=GOOGLE_CLOUD_PROJECT"
  "admin_email=ADMIN_EMAIL"
  "auth_google_id=AUTH_GOOGLE_ID"
  "base_url=BASE_URL"
)
OAUTH_CLIENT_SECRET_ID="${OAUTH_CLIENT_SECRET_ID:-classcal-oauth-client-secret}"
SESSION_KEY_SECRET_ID="${SESSION_KEY_SECRET_ID:-classcal-session-signing-key}"

# How the functions reach Google Calendar: oauth (the admin's refresh token, the default)
# or service_account (domain-wide delegation, keyless). From GOOGLE_AUTH_MODE, else
# TF_VAR_google_auth_mode, else google_auth_mode in infra/terraform.tfvars.
auth_mode() {
  local mode="${GOOGLE_AUTH_MODE:-${TF_VAR_google_auth_mode:-}}"
  if [ -z "$mode" ] && [ -f infra/terraform.tfvars ]; then
    mode="$(sed -nE 's/^[[:space:]]*google_auth_mode[[:space:]]*=[[:space:]]*"([a-z_]+)".*/\1/p' infra/terraform.tfvars | tail -n 1)"
  fi
  echo "${mode:-oauth}"
}
AUTH_MODE="$(auth_mode)"

tf_var_args=()
collect_variables() {
  local missing=() pair tf_name env_name tf_env
  case "$AUTH_MODE" in
    oauth | service_account) tf_var_args+=(-var "google_auth_mode=$AUTH_MODE") ;;
    *) fail "GOOGLE_AUTH_MODE must be oauth or service_account, got '$AUTH_MODE'" ;;
  esac
  for pair in "${TF_FROM_ENV[@]}"; do
    tf_name="${pair%%=*}"
    env_name="${pair#*=}"
    tf_env="TF_VAR_$tf_name"
    if [ "$tf_name" = auth_google_id ] && [ "$AUTH_MODE" = service_account ] && [ -z "${!env_name:-}" ]; then
      continue # no OAuth client in service_account mode
    elif [ -n "${!env_name:-}" ]; then
      tf_var_args+=(-var "$tf_name=${!env_name}")
    elif [ "$tf_name" = project_id ]; then
      # The project is also where gcloud looks for secrets: it must be this variable.
      missing+=("GOOGLE_CLOUD_PROJECT (the Google Cloud project ID to deploy into)")
    elif [ -z "${!tf_env:-}" ] &&
      ! grep -Eq "^[[:space:]]*${tf_name}[[:space:]]*=" infra/terraform.tfvars 2>/dev/null; then
      missing+=("$env_name (or $tf_name in infra/terraform.tfvars)")
    fi
  done
  tf_var_args+=(-var "oauth_client_secret_id=$OAUTH_CLIENT_SECRET_ID")
  if [ -n "${MERCADOPAGO_ENABLED:-}" ]; then
    tf_var_args+=(-var "mercadopago_enabled=$MERCADOPAGO_ENABLED")
  fi
  tf_var_args+=(-var "mercadopago_access_token_secret_id=$MERCADOPAGO_ACCESS_TOKEN_SECRET_ID")
  tf_var_args+=(-var "mercadopago_webhook_secret_id=$MERCADOPAGO_WEBHOOK_SECRET_ID")
  tf_var_args+=(-var "session_key_secret_id=$SESSION_KEY_SECRET_ID")
  if [ ${#missing[@]} -gt 0 ]; then
    printf 'deploy.sh: set these before deploying (docs/operations.md: "Deploying to Google Cloud"):\n' >&2
    printf '  %s\n' "${missing[@]}" >&2
    exit 1
  fi
}

check_tools() {
  command -v terraform >/dev/null 2>&1 ||
    fail "terraform is not installed: get Terraform 1.5 or newer (https://developer.hashicorp.com/terraform/install)"
  command -v gcloud >/dev/null 2>&1 ||
    fail "gcloud is not installed: get the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)"
}

check_login() {
  gcloud auth print-access-token >/dev/null 2>&1 ||
    fail "gcloud is not logged in: run 'gcloud auth login' (and 'gcloud auth application-default login' for Terraform)"
  # Terraform's Google provider reads Application Default Credentials, not gcloud's login.
  if [ -z "${GOOGLE_APPLICATION_CREDENTIALS:-}${GOOGLE_CREDENTIALS:-}${GOOGLE_OAUTH_ACCESS_TOKEN:-}" ]; then
    gcloud auth application-default print-access-token >/dev/null 2>&1 ||
      fail "Terraform has no Google credentials: run 'gcloud auth application-default login'"
  fi
}

MERCADOPAGO_ACCESS_TOKEN_SECRET_ID="${MERCADOPAGO_ACCESS_TOKEN_SECRET_ID:-classcal-mercadopago-access-token}"
MERCADOPAGO_WEBHOOK_SECRET_ID="${MERCADOPAGO_WEBHOOK_SECRET_ID:-classcal-mercadopago-webhook-secret}"

# MercadoPago is on with MERCADOPAGO_ENABLED=true, TF_VAR_mercadopago_enabled=true or
# mercadopago_enabled = true in infra/terraform.tfvars.
mercadopago_enabled() {
  [ "${MERCADOPAGO_ENABLED:-${TF_VAR_mercadopago_enabled:-}}" = true ] ||
    grep -Eq '^[[:space:]]*mercadopago_enabled[[:space:]]*=[[:space:]]*true' infra/terraform.tfvars 2>/dev/null
}

secret_has_version() {
  [ -n "$(gcloud secrets versions list "$1" --project "$GOOGLE_CLOUD_PROJECT" \
    --filter=state:ENABLED --limit=1 --format='value(name)' 2>/dev/null)" ]
}

client_secret_has_version() {
  secret_has_version "$OAUTH_CLIENT_SECRET_ID"
}

# ensure_secret SECRET_ID TERRAFORM_ADDRESS ENV_NAME WHAT
# The functions read their secrets from Secret Manager when they start, so each secret
# needs a version before they are deployed. Terraform creates the secret; its value
# goes straight from $ENV_NAME (or the terminal, unseen) to Secret Manager, never into
# Terraform's state.
ensure_secret() {
  local secret_id="$1" address="$2" env_name="$3" what="$4"
  secret_has_version "$secret_id" && return 0
  echo "deploy.sh: the $what is not in Secret Manager yet; creating $secret_id first" >&2
  terraform -chdir=infra apply -input=false -auto-approve "${tf_var_args[@]}" -target="$address"
  local secret="${!env_name:-}"
  if [ -z "$secret" ] && [ -t 0 ]; then
    read -rsp "$what (not shown): " secret
    echo >&2
  fi
  [ -n "$secret" ] || fail "no $what: export $env_name or run
  printf %s 'THE-VALUE' | gcloud secrets versions add $secret_id --project $GOOGLE_CLOUD_PROJECT --data-file=-
then ./deploy.sh apply again"
  printf %s "$secret" | gcloud secrets versions add "$secret_id" \
    --project "$GOOGLE_CLOUD_PROJECT" --data-file=- >/dev/null
  unset secret "$env_name"
  echo "deploy.sh: stored the $what as a new version of $secret_id" >&2
}

ensure_client_secret() {
  ensure_secret "$OAUTH_CLIENT_SECRET_ID" google_secret_manager_secret.oauth_client \
    AUTH_GOOGLE_SECRET "OAuth client secret (from the Google Cloud console)"
  if mercadopago_enabled; then
    ensure_secret "$MERCADOPAGO_ACCESS_TOKEN_SECRET_ID" \
      'google_secret_manager_secret.mercadopago_access_token[0]' MERCADOPAGO_ACCESS_TOKEN \
      "MercadoPago access token (Your integrations > the application > Production credentials)"
    ensure_secret "$MERCADOPAGO_WEBHOOK_SECRET_ID" \
      'google_secret_manager_secret.mercadopago_webhook[0]' MERCADOPAGO_WEBHOOK_SECRET \
      "MercadoPago webhook secret (Your integrations > the application > Webhooks)"
  fi
}

session_key_has_version() {
  [ -n "$(gcloud secrets versions list "$SESSION_KEY_SECRET_ID" --project "$GOOGLE_CLOUD_PROJECT" \
    --filter=state:ENABLED --limit=1 --format='value(name)' 2>/dev/null)" ]
}

# oauth_callback reads SESSION_SIGNING_KEY from Secret Manager when it starts. The key is
# random, made here and piped straight to gcloud: never a Terraform variable or state.
ensure_session_key() {
  session_key_has_version && return 0
  echo "deploy.sh: creating the console's session signing key in $SESSION_KEY_SECRET_ID" >&2
  terraform -chdir=infra apply -input=false -auto-approve "${tf_var_args[@]}" \
    -target=google_secret_manager_secret.session_key
  command -v openssl >/dev/null 2>&1 || fail "openssl is needed to create the session signing key"
  openssl rand -base64 48 | tr -d '\n' | gcloud secrets versions add "$SESSION_KEY_SECRET_ID" \
    --project "$GOOGLE_CLOUD_PROJECT" --data-file=- >/dev/null
  echo "deploy.sh: stored a new random session signing key" >&2
}

terraform_run() {
  local action="$1"
  shift
  collect_variables
  check_tools
  check_login
  package_functions
  terraform -chdir=infra init -input=false >/dev/null
  if [ "$action" = plan ]; then
    [ "$AUTH_MODE" = service_account ] || client_secret_has_version ||
      echo "deploy.sh: note: $OAUTH_CLIENT_SECRET_ID has no version yet; ./deploy.sh apply asks for it" >&2
    if mercadopago_enabled; then
      for id in "$MERCADOPAGO_ACCESS_TOKEN_SECRET_ID" "$MERCADOPAGO_WEBHOOK_SECRET_ID"; do
        secret_has_version "$id" ||
          echo "deploy.sh: note: $id has no version yet; ./deploy.sh apply asks for it" >&2
      done
    fi
    session_key_has_version ||
      echo "deploy.sh: note: $SESSION_KEY_SECRET_ID has no version yet; ./deploy.sh apply creates one" >&2
    terraform -chdir=infra plan -input=false "${tf_var_args[@]}" "$@"
    return
  fi
  # service_account mode: no function reads the OAuth client secret.
  [ "$AUTH_MODE" = service_account ] || ensure_client_secret
  ensure_session_key
  # No -input=false here: Terraform shows the plan and asks before changing anything.
  terraform -chdir=infra apply "${tf_var_args[@]}" "$@"
  echo
  if [ "$AUTH_MODE" = service_account ]; then
    echo "Next: in the Workspace admin console (Security > Access and data control > API controls >"
    echo "Manage Domain Wide Delegation), add this client ID with this one scope (docs/operations.md):"
    terraform -chdir=infra output delegation_client_id
    terraform -chdir=infra output delegation_scope
    return
  fi
  echo "Next: register google_redirect_uri in the OAuth client, then open the console as the admin, sign in and press Connect Google:"
  terraform -chdir=infra output google_redirect_uri
  terraform -chdir=infra output console_url
  if mercadopago_enabled; then
    echo "Then set this as the Webhooks URL of the MercadoPago application (events: Payments):"
    terraform -chdir=infra output payment_webhook_url
  fi
}

[ $# -ge 1 ] || usage
command="$1"
shift

case "$command" in
  local)
    . scripts/venv.sh
    exec python -m localstack "$@"
    ;;
  package)
    package_functions "$@"
    ;;
  plan | apply)
    terraform_run "$command" "$@"
    ;;
  *)
    usage
    ;;
esac
