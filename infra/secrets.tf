# Secrets. Terraform creates the containers only: no value ever passes through a
# Terraform variable, a plan or the state.

# The admin's refresh token. oauth_callback adds a version per connection and disables
# the older ones (an operator rolls back by enabling an older one: docs/operations.md).
resource "google_secret_manager_secret" "refresh_token" {
  # service_account mode keeps no refresh token.
  count = var.google_auth_mode == "oauth" ? 1 : 0

  project   = var.project_id
  secret_id = var.refresh_token_secret_id

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

# The OAuth client secret, injected into every function as AUTH_GOOGLE_SECRET. The
# operator adds its value with gcloud before the functions are deployed
# (./deploy.sh apply asks for it on the first run).
resource "google_secret_manager_secret" "oauth_client" {
  project   = var.project_id
  secret_id = var.oauth_client_secret_id

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

# MercadoPago's access token and webhook secret (var.mercadopago_enabled), added by
# ./deploy.sh apply the way the OAuth client secret is, never through Terraform.
resource "google_secret_manager_secret" "mercadopago_access_token" {
  count = var.mercadopago_enabled ? 1 : 0

  project   = var.project_id
  secret_id = var.mercadopago_access_token_secret_id

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret" "mercadopago_webhook" {
  count = var.mercadopago_enabled ? 1 : 0

  project   = var.project_id
  secret_id = var.mercadopago_webhook_secret_id

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

# The key that signs the admin's session cookie, the OAuth flow cookie and the CSRF
# tokens, injected into oauth_callback as SESSION_SIGNING_KEY. ./deploy.sh apply adds
# a random version when the secret has none; a new version signs the admin out.
resource "google_secret_manager_secret" "session_key" {
  project   = var.project_id
  secret_id = var.session_key_secret_id

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

locals {
  # Environment variable => the secret it is read from.
  secret_environment_sources = merge(
    {
      AUTH_GOOGLE_SECRET  = google_secret_manager_secret.oauth_client.secret_id
      SESSION_SIGNING_KEY = google_secret_manager_secret.session_key.secret_id
    },
    var.mercadopago_enabled ? {
      MERCADOPAGO_ACCESS_TOKEN   = one(google_secret_manager_secret.mercadopago_access_token[*].secret_id)
      MERCADOPAGO_WEBHOOK_SECRET = one(google_secret_manager_secret.mercadopago_webhook[*].secret_id)
    } : {},
  )
}
