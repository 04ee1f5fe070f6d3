# google_auth_mode = "service_account": the Calendar-using functions act as admin_email
# through the Workspace domain's delegation, keyless. They share one service account,
# allowed to have Google sign JWTs as itself and nothing more (IAM Credentials signJwt);
# there is no refresh-token secret and no rotation role. The Workspace administrator
# delegates the calendar scope to this account's client id (output delegation_client_id;
# docs/operations.md, "Service-account mode").

locals {
  delegated        = var.google_auth_mode == "service_account"
  delegation_scope = "https://www.googleapis.com/auth/calendar.events"

  # Functions that reach Google Calendar as the admin: in this mode they run as the
  # shared account; every other function keeps its own.
  calendar_functions    = { for name, f in local.functions : name => f if f.refresh_token != "none" }
  own_account_functions = local.delegated ? { for name, f in local.functions : name => f if f.refresh_token == "none" } : local.functions
  # Functions that read (or rotate) the refresh token: none in service-account mode.
  oauth_functions = local.delegated ? {} : local.functions

  delegation_environment = local.delegated ? {
    GOOGLE_AUTH_MODE                 = "service_account"
    GOOGLE_SERVICE_ACCOUNT_EMAIL     = google_service_account.calendar[0].email
    GOOGLE_SERVICE_ACCOUNT_CLIENT_ID = google_service_account.calendar[0].unique_id
  } : {}

  # The shared account holds the Firestore roles its functions need (the union).
  calendar_project_roles = local.delegated ? toset(flatten([
    for name, f in local.calendar_functions : local.firestore_roles[f.firestore]
  ])) : toset([])
}

resource "google_service_account" "calendar" {
  count = local.delegated ? 1 : 0

  project      = var.project_id
  account_id   = "classcal-calendar"
  display_name = "classcal Calendar functions (domain-wide delegation)"
  description  = "Runs the functions that use Google Calendar; the Workspace admin delegates the calendar scope to its client id."

  depends_on = [google_project_service.apis]
}

# Signing its own delegation JWTs (signJwt) is the only thing it may do with an account.
resource "google_service_account_iam_member" "calendar_signs_as_itself" {
  count = local.delegated ? 1 : 0

  service_account_id = google_service_account.calendar[0].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.calendar[0].member
}

resource "google_project_iam_member" "calendar" {
  for_each = local.calendar_project_roles

  project = var.project_id
  role    = each.value
  member  = google_service_account.calendar[0].member
}

output "delegation_client_id" {
  description = "service_account mode: the client id to enter in the Workspace admin console (Security > API controls > Domain-wide delegation), with delegation_scope."
  value       = local.delegated ? google_service_account.calendar[0].unique_id : null
}

output "delegation_scope" {
  description = "service_account mode: the one OAuth scope to delegate to delegation_client_id."
  value       = local.delegated ? local.delegation_scope : null
}

# oauth mode needs the OAuth client the admin connects through; service_account mode none.
resource "terraform_data" "auth_mode_complete" {
  input = var.google_auth_mode

  lifecycle {
    precondition {
      condition     = local.delegated || var.auth_google_id != ""
      error_message = "google_auth_mode = oauth needs auth_google_id (the OAuth client id); set it, or set google_auth_mode = service_account."
    }
  }
}
