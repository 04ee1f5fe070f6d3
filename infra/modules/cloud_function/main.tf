# A Cloud Function (2nd gen) from a zipped source bundle: the bundle object, the
# function, and, for an event function, the push subscription that delivers its topic.
#
# The bundle object is named by the zip's SHA-256, so a code change is a new object and
# so a new build and revision; the same code gives the same zip (./deploy.sh package
# builds it reproducibly) and therefore no change at all.

locals {
  bundle_sha256 = filesha256(var.bundle_path)
  service_name  = reverse(split("/", google_cloudfunctions2_function.this.service_config[0].service))[0]
  topic_name    = var.pubsub_trigger == null ? null : reverse(split("/", var.pubsub_trigger.topic))[0]
}

resource "google_storage_bucket_object" "bundle" {
  bucket       = var.source_bucket
  name         = "${var.name}/${local.bundle_sha256}.zip"
  source       = var.bundle_path
  content_type = "application/zip"
}

resource "google_cloudfunctions2_function" "this" {
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = "classcal ${var.name}"
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = var.entry_point
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = google_storage_bucket_object.bundle.bucket
        object = google_storage_bucket_object.bundle.name
      }
    }
  }

  service_config {
    service_account_email          = var.service_account_email
    ingress_settings               = var.ingress
    all_traffic_on_latest_revision = true
    min_instance_count             = var.min_instances
    max_instance_count             = var.max_instances
    available_memory               = var.memory
    timeout_seconds                = var.timeout_seconds
    environment_variables          = var.environment

    dynamic "secret_environment_variables" {
      for_each = var.secret_environment
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        # Read when an instance starts: a new client secret reaches new instances.
        version = "latest"
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.min_instances <= var.max_instances
      error_message = "min_instances (${var.min_instances}) of ${var.name} must not exceed max_instances (${var.max_instances})."
    }
  }
}

# Pub/Sub pushes each message to the function's own URL, signed as the invoker service
# account (the only identity, besides allUsers for public functions, allowed to invoke
# it). The path names the topic, which functions-framework reads into the CloudEvent.
resource "google_pubsub_subscription" "push" {
  count = var.pubsub_trigger == null ? 0 : 1

  project = var.project_id
  name    = "${local.topic_name}-${replace(var.name, "_", "-")}"
  topic   = var.pubsub_trigger.topic
  labels  = var.labels

  # A delivery is answered when the function returns, at most timeout_seconds later;
  # a shorter deadline would redeliver a message that is still being handled.
  ack_deadline_seconds       = max(10, min(600, var.timeout_seconds))
  message_retention_duration = var.pubsub_trigger.message_retention

  # The function answers 5xx when it raises (a transient error): Pub/Sub then retries
  # with exponential backoff between these bounds.
  retry_policy {
    minimum_backoff = var.pubsub_trigger.minimum_backoff
    maximum_backoff = var.pubsub_trigger.maximum_backoff
  }

  dynamic "dead_letter_policy" {
    for_each = var.pubsub_trigger.dead_letter_topic == null ? [] : [var.pubsub_trigger]
    content {
      dead_letter_topic     = dead_letter_policy.value.dead_letter_topic
      max_delivery_attempts = dead_letter_policy.value.max_delivery_attempts
    }
  }

  expiration_policy {
    ttl = "" # never expires while idle
  }

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.this.service_config[0].uri}/projects/${var.project_id}/topics/${local.topic_name}"

    oidc_token {
      service_account_email = var.pubsub_trigger.invoker_service_email
      audience              = google_cloudfunctions2_function.this.service_config[0].uri
    }
  }
}
