# Topics. The push subscriptions that deliver them to the event functions are made by
# the cloud_function module (see the trigger column in functions.tf).
#
#   site (payments_publishers) --> payments --push--> create_event
#                                     |  after payments_max_delivery_attempts failures
#                                     v
#                              payments-dead-letter --> payments-dead-letter-hold (kept 7 days)
#
#   platform (booking_changes_publishers) --> booking-changes --push--> booking_changes
#                                     |  after booking_changes_max_delivery_attempts failures
#                                     v
#                      booking-changes-dead-letter --> booking-changes-dead-letter-hold (7 days)
#
#   Cloud Scheduler --> calendar-maintenance --push--> calendar_maintenance
#
#   Google Calendar --push notification--> calendar_webhook --> calendar-changes
#                                              --push--> calendar_sync (school's token)
#
#   join_class --> guest-changes --push--> guest_invitations
#                     |  after 10 failed deliveries
#                     v
#              guest-changes-dead-letter --> guest-changes-dead-letter-hold (kept 7 days;
#              calendar_maintenance makes what is pending anyway)

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  # Pub/Sub's own service agent: it signs push requests and moves messages to the dead-letter topic.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "payments" {
  project = var.project_id
  name    = "payments"
  # A payment that arrives while create_event is down must still be there when it is back.
  message_retention_duration = "604800s"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "payments_dead_letter" {
  project                    = var.project_id
  name                       = "payments-dead-letter"
  message_retention_duration = "604800s"

  depends_on = [google_project_service.apis]
}

# Without a subscription a dead-lettered message would be dropped at once; this one keeps
# it for replay (docs/operations.md: "When a payment is dead-lettered").
resource "google_pubsub_subscription" "payments_dead_letter_hold" {
  project                    = var.project_id
  name                       = "payments-dead-letter-hold"
  topic                      = google_pubsub_topic.payments_dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = "" # never expires, however long nothing is dead-lettered
  }
}

# Reschedules and cancellations the school's platform asks for (docs/contracts/booking_changes.md).
resource "google_pubsub_topic" "booking_changes" {
  project = var.project_id
  name    = "booking-changes"
  # Like a payment, a change that arrives while booking_changes is down must wait for it.
  message_retention_duration = "604800s"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "booking_changes_dead_letter" {
  project                    = var.project_id
  name                       = "booking-changes-dead-letter"
  message_retention_duration = "604800s"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "booking_changes_dead_letter_hold" {
  project                    = var.project_id
  name                       = "booking-changes-dead-letter-hold"
  topic                      = google_pubsub_topic.booking_changes_dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic" "calendar_maintenance" {
  project = var.project_id
  name    = "calendar-maintenance"
  # A missed run is made up by the next one: an old tick is worth nothing.
  message_retention_duration = "3600s"

  depends_on = [google_project_service.apis]
}

# Who may publish a payment: the site's payment webhook, nobody else.
resource "google_pubsub_topic_iam_member" "payments_publishers" {
  for_each = toset(var.payments_publishers)

  project = var.project_id
  topic   = google_pubsub_topic.payments.name
  role    = "roles/pubsub.publisher"
  member  = each.value
}

# Who may move or cancel a class: the school's platform, nobody else.
resource "google_pubsub_topic_iam_member" "booking_changes_publishers" {
  for_each = toset(var.booking_changes_publishers)

  project = var.project_id
  topic   = google_pubsub_topic.booking_changes.name
  role    = "roles/pubsub.publisher"
  member  = each.value
}

# Dead-lettering is done by the Pub/Sub service agent: it publishes to the dead-letter
# topic and acknowledges on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.payments_dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_topic_iam_member" "booking_changes_dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.booking_changes_dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_source" {
  for_each = { for name, f in local.functions : name => f if try(f.delivery.dead_letter_topic, null) != null }

  project      = var.project_id
  subscription = module.function[each.key].subscription_name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# A verified change notification for calendar_sync (docs/contracts/calendar_webhook.md).
# Each says only that the calendar changed: a day's retention is plenty, since the
# hourly maintenance run syncs anyway.
resource "google_pubsub_topic" "calendar_changes" {
  project                    = var.project_id
  name                       = "calendar-changes"
  message_retention_duration = "86400s"

  depends_on = [google_project_service.apis]
}

# Nudges from join_class: "a group class's guests changed". A nudge names a booking
# only; the booking holds what is wanted, so an old one is harmless and a lost one is
# made up by maintenance.
resource "google_pubsub_topic" "guest_changes" {
  project                    = var.project_id
  name                       = "guest-changes"
  message_retention_duration = "86400s"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "guest_changes_dead_letter" {
  project                    = var.project_id
  name                       = "guest-changes-dead-letter"
  message_retention_duration = "604800s"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "guest_changes_dead_letter_hold" {
  project                    = var.project_id
  name                       = "guest-changes-dead-letter-hold"
  topic                      = google_pubsub_topic.guest_changes_dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "guest_changes_dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.guest_changes_dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}
