# Telling the admin: log-based metrics over the functions' JSON log lines, and Cloud
# Monitoring alert policies that email ADMIN_EMAIL. Each alert's documentation says
# what to do and links to the admin's console (oauth_callback's page).
#
#   google_connection_refused   a function met admin_reconnect_required (Google refused
#                               the stored permission, or none is stored)
#   bookings_failed             a booking failed for good (Meet failed, event deleted,
#                               slot taken): a person must act
#   payments dead-lettered      a payment message sits in payments-dead-letter-hold
#   channel_not_renewed         maintenance could not create or renew the watch channel

locals {
  console_url = "${local.functions_base_url}/oauth_callback/"
  # Every classcal function runs as a Cloud Run service (2nd gen) of its own name.
  classcal_services = join(" OR ", [for name in keys(local.function_specs) : "resource.labels.service_name=\"${replace(name, "_", "-")}\""])
  log_metric_filters = {
    google_connection_refused = "jsonPayload.reason=\"admin_reconnect_required\""
    bookings_failed           = "severity>=ERROR AND jsonPayload.outcome=\"failed\" AND jsonPayload.booking_id:*"
    channel_not_renewed       = "jsonPayload.step=\"channel\" AND severity>=WARNING"
  }
  alert_documentation = {
    google_connection_refused = "Google no longer accepts classcal's permission on the school calendar, so new classes wait. Open the console (${local.console_url}), sign in and press Reconnect Google. Waiting bookings are scheduled by themselves once it is done."
    bookings_failed           = "A paid booking could not be scheduled and a retry alone will not fix it (its Meet link failed, its event was deleted, or its time was taken). Open the console (${local.console_url}) to see the booking and its reason; fix the cause, then press Retry now."
    channel_not_renewed       = "classcal could not create or renew its watch on the school calendar, so changes made in Google Calendar reach bookings only at the hourly maintenance. Open the console (${local.console_url}) to check the Google connection and the calendar link; the function logs of calendar_maintenance say why."
  }
}

resource "google_monitoring_notification_channel" "admin_email" {
  project      = var.project_id
  display_name = "classcal admin (${var.admin_email})"
  type         = "email"
  labels = {
    email_address = var.admin_email
  }

  depends_on = [google_project_service.apis]
}

resource "google_logging_metric" "classcal" {
  for_each = local.log_metric_filters

  project = var.project_id
  name    = "classcal/${each.key}"
  filter  = "resource.type=\"cloud_run_revision\" AND (${local.classcal_services}) AND ${each.value}"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "log_based" {
  for_each = local.log_metric_filters

  project      = var.project_id
  display_name = "classcal: ${replace(each.key, "_", " ")}"
  combiner     = "OR"

  conditions {
    display_name = "classcal ${replace(each.key, "_", " ")} in the last 5 minutes"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.classcal[each.key].name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    content   = local.alert_documentation[each.key]
    mime_type = "text/markdown"
  }

  notification_channels = [google_monitoring_notification_channel.admin_email.id]

  alert_strategy {
    auto_close = "86400s"
  }

  depends_on = [google_project_service.apis]
}

# A dead-lettered payment waits in its hold subscription until an operator replays it.
resource "google_monitoring_alert_policy" "payments_dead_lettered" {
  project      = var.project_id
  display_name = "classcal: payments dead-lettered"
  combiner     = "OR"

  conditions {
    display_name = "a payment message is waiting in ${google_pubsub_subscription.payments_dead_letter_hold.name}"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${google_pubsub_subscription.payments_dead_letter_hold.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    content   = "A payment message could not be handled after every retry and was set aside in ${google_pubsub_subscription.payments_dead_letter_hold.name}, so its class may not be scheduled. Open the console (${local.console_url}) to see bookings that need a person, then follow docs/operations.md (\"When a payment is dead-lettered\") to replay the message."
    mime_type = "text/markdown"
  }

  notification_channels = [google_monitoring_notification_channel.admin_email.id]

  alert_strategy {
    auto_close = "86400s"
  }

  depends_on = [google_project_service.apis]
}
