# Who may do what. Every grant classcal makes is in this file; the table it follows
# is function_specs in functions.tf.
#
#   (google_auth_mode = service_account: the Calendar-using functions share the one
#   account of delegation.tf instead, and nothing below touches a refresh token)
#   function SA (one each)   Firestore: roles/datastore.user when firestore = readwrite,
#                              roles/datastore.viewer when read (list_events)
#                            refresh-token secret: secretAccessor unless refresh_token = none;
#                              oauth_callback also
#                              the tokenRotator custom role (add, list, disable versions)
#                            its `secrets` (AUTH_GOOGLE_SECRET, ...): secretAccessor on each
#                            its `publishes` topics (payment_webhook: payments): publisher
#   invoker SA (one per event function)   roles/run.invoker on that function only
#   allUsers                 roles/run.invoker on the public functions only
#   build SA                 builds the functions (logs, images, sources)

locals {
  firestore_roles = {
    none      = []
    read      = ["roles/datastore.viewer"]
    readwrite = ["roles/datastore.user"]
  }

  function_project_roles = merge([
    for name, f in local.own_account_functions : {
      for role in local.firestore_roles[f.firestore] : "${name} ${role}" => { function = name, role = role }
    }
  ]...)

  function_secret_environment = merge([
    for name, f in local.functions : {
      for env_name in local.function_secrets[name] : "${name} ${env_name}" => { function = name, secret = local.secret_environment_sources[env_name] }
    }
  ]...)

  function_publishers = merge([
    for name, f in local.functions : {
      for topic in f.publishes : "${name} ${topic}" => { function = name, topic = topic }
    }
  ]...)

  event_functions  = { for name, f in local.functions : name => f if f.trigger == "pubsub" }
  public_functions = { for name, f in local.functions : name => f if f.public }
}

# --- the functions' own identities ---------------------------------------------------

resource "google_service_account" "function" {
  for_each = local.own_account_functions

  project      = var.project_id
  account_id   = substr("classcal-${replace(each.key, "_", "-")}", 0, 30)
  display_name = "classcal ${each.key} (runtime)"
  description  = "Runs the ${each.key} function; holds only the roles iam.tf grants it."

  depends_on = [google_project_service.apis]
}

resource "google_project_iam_member" "function" {
  for_each = local.function_project_roles

  project = var.project_id
  role    = each.value.role
  member  = google_service_account.function[each.value.function].member
}

# Every function that acts as the admin in Google Calendar reads the refresh token;
# list_events and join_class (refresh_token = none) never do.
resource "google_secret_manager_secret_iam_member" "refresh_token_reader" {
  for_each = { for name, f in local.oauth_functions : name => f if f.refresh_token != "none" }

  project   = var.project_id
  secret_id = google_secret_manager_secret.refresh_token[0].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function[each.key].member
}

# Only the OAuth function stores a new token: it adds a version and disables the older
# ones. A custom role, since the predefined secretVersionManager could also destroy them.
resource "google_project_iam_custom_role" "token_rotator" {
  count = local.delegated ? 0 : 1

  project     = var.project_id
  role_id     = "classcalTokenRotator"
  title       = "classcal refresh-token rotator"
  description = "Add a refresh-token version and disable older ones; never destroy."
  permissions = [
    "secretmanager.versions.add",
    "secretmanager.versions.disable",
    "secretmanager.versions.list",
  ]
}

resource "google_secret_manager_secret_iam_member" "refresh_token_rotator" {
  for_each = { for name, f in local.oauth_functions : name => f if f.refresh_token == "rotate" }

  project   = var.project_id
  secret_id = google_secret_manager_secret.refresh_token[0].secret_id
  role      = google_project_iam_custom_role.token_rotator[0].name
  member    = google_service_account.function[each.key].member
}

# Secrets injected as environment variables are read by Cloud Run, as the function's
# own service account, when an instance starts.
resource "google_secret_manager_secret_iam_member" "secret_environment" {
  for_each = local.function_secret_environment

  project   = var.project_id
  secret_id = each.value.secret
  role      = "roles/secretmanager.secretAccessor"
  member    = local.runtime_members[each.value.function]
}

# A function that publishes (join_class to guest-changes, payment_webhook to payments,
# calendar_webhook to calendar-changes)
# may publish to that topic, and to nothing else.
resource "google_pubsub_topic_iam_member" "function_publisher" {
  for_each = local.function_publishers

  project = var.project_id
  topic   = local.topics[each.value.topic]
  role    = "roles/pubsub.publisher"
  member  = google_service_account.function[each.value.function].member
}

# --- who may invoke a function ---------------------------------------------------------

# The public endpoints: the booking page, the admin's browser, Google Calendar's pushes.
# Each checks its callers itself (CORS, OAuth state, channel token).
resource "google_cloud_run_v2_service_iam_member" "public" {
  for_each = local.public_functions

  project  = var.project_id
  location = var.region
  name     = module.function[each.key].service_name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# Event functions are invoked only by their push subscription, signed as this account.
resource "google_service_account" "invoker" {
  for_each = local.event_functions

  project      = var.project_id
  account_id   = substr("invoke-${replace(each.key, "_", "-")}", 0, 30)
  display_name = "classcal ${each.key} (Pub/Sub push)"
  description  = "Identity of the Pub/Sub push subscription that delivers ${each.value.topic} to ${each.key}."

  depends_on = [google_project_service.apis]
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = local.event_functions

  project  = var.project_id
  location = var.region
  name     = module.function[each.key].service_name
  role     = "roles/run.invoker"
  member   = google_service_account.invoker[each.key].member
}

# Pub/Sub's service agent mints the push requests' OIDC tokens as the invoker account.
resource "google_service_account_iam_member" "invoker_token_creator" {
  for_each = local.event_functions

  service_account_id = google_service_account.invoker[each.key].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# --- the build ----------------------------------------------------------------------

# Cloud Build builds each function as this account instead of the project's default
# compute account, which new projects no longer give the roles a build needs.
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "classcal-build"
  display_name = "classcal function builds"
  description  = "Cloud Build runs the functions' builds as this account."

  depends_on = [google_project_service.apis]
}

resource "google_project_iam_member" "build" {
  for_each = toset([
    "roles/logging.logWriter",       # build logs
    "roles/artifactregistry.writer", # the built images
    "roles/storage.objectAdmin",     # the source bundles and build caches
  ])

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}
