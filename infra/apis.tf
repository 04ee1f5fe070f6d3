# Google APIs classcal needs. Left enabled on destroy: other things in the project may
# use them, and disabling an API can delete its data.

locals {
  apis = toset([
    "artifactregistry.googleapis.com", # images the function builds produce
    "calendar-json.googleapis.com",    # Google Calendar, called with the admin's token
    "cloudbuild.googleapis.com",       # builds the functions from their source bundles
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com", # the hourly maintenance trigger
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com", # signJwt, for keyless delegation (service_account mode)
    "logging.googleapis.com",
    "monitoring.googleapis.com", # the alert policies that email the admin (monitoring.tf)
    "pubsub.googleapis.com",
    "run.googleapis.com", # a 2nd gen function is a Cloud Run service
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
}

resource "google_project_service" "apis" {
  for_each = local.apis

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
