#!/usr/bin/env bash
# classcal's one entry point for running and deploying:
#   ./deploy.sh local [--once]   the whole backend on this machine (emulators + Google sandbox)
#   ./deploy.sh package          build/<function>/ and build/<function>.zip for every function
#   ./deploy.sh plan | apply     package, then Terraform against $GOOGLE_CLOUD_PROJECT
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
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

tf_var_args=()
collect_variables() {
  local missing=() pair tf_name env_name tf_env
  for pair in "${TF_FROM_ENV[@]}"; do
    tf_name="${pair%%=*}"
    env_name="${pair#*=}"
    tf_env="TF_VAR_$tf_name"
    if [ -n "${!env_name:-}" ]; then
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
  tf_var_args+=(-var "session_key_secret_id=$SESSION_KEY_SECRET_ID")
  if [ ${#missing[@]} -gt 0 ]; then
    printf 'deploy.sh: set these before deploying (README: "Deploying to Google Cloud"):\n' >&2
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

client_secret_has_version() {
  [ -n "$(gcloud secrets versions list "$OAUTH_CLIENT_SECRET_ID" --project "$GOOGLE_CLOUD_PROJECT" \
    --filter=state:ENABLED --limit=1 --format='value(name)' 2>/dev/null)" ]
}

# The functions read AUTH_GOOGLE_SECRET from Secret Manager when they start, so the
# secret needs a version before they are deployed. Terraform creates the secret; its
# value goes straight from here to Secret Manager, never into Terraform's state.
ensure_client_secret() {
  client_secret_has_version && return 0
  echo "deploy.sh: the OAuth client secret is not in Secret Manager yet; creating $OAUTH_CLIENT_SECRET_ID first" >&2
  terraform -chdir=infra apply -input=false -auto-approve "${tf_var_args[@]}" \
    -target=google_secret_manager_secret.oauth_client
  local secret="${AUTH_GOOGLE_SECRET:-}"
  if [ -z "$secret" ] && [ -t 0 ]; then
    read -rsp "OAuth client secret (from the Google Cloud console, not shown): " secret
    echo >&2
  fi
  [ -n "$secret" ] || fail "no OAuth client secret: export AUTH_GOOGLE_SECRET or run
  printf %s 'THE-CLIENT-SECRET' | gcloud secrets versions add $OAUTH_CLIENT_SECRET_ID --project $GOOGLE_CLOUD_PROJECT --data-file=-
then ./deploy.sh apply again"
  printf %s "$secret" | gcloud secrets versions add "$OAUTH_CLIENT_SECRET_ID" \
    --project "$GOOGLE_CLOUD_PROJECT" --data-file=- >/dev/null
  unset secret AUTH_GOOGLE_SECRET
  echo "deploy.sh: stored the OAuth client secret as a new version of $OAUTH_CLIENT_SECRET_ID" >&2
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
    client_secret_has_version ||
      echo "deploy.sh: note: $OAUTH_CLIENT_SECRET_ID has no version yet; ./deploy.sh apply asks for it" >&2
    session_key_has_version ||
      echo "deploy.sh: note: $SESSION_KEY_SECRET_ID has no version yet; ./deploy.sh apply creates one" >&2
    terraform -chdir=infra plan -input=false "${tf_var_args[@]}" "$@"
    return
  fi
  ensure_client_secret
  ensure_session_key
  # No -input=false here: Terraform shows the plan and asks before changing anything.
  terraform -chdir=infra apply "${tf_var_args[@]}" "$@"
  echo
  echo "Next: register google_redirect_uri in the OAuth client, then open the console as the admin, sign in and press Connect Google:"
  terraform -chdir=infra output google_redirect_uri
  terraform -chdir=infra output console_url
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
