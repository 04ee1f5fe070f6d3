output "function_urls" {
  description = "Each deployed function's URL."
  value       = { for name, f in module.function : name => f.url }
}

output "google_redirect_uri" {
  description = "The redirect URI to register in the OAuth client (Authorized redirect URIs), exactly."
  value       = local.google_redirect_uri
}

output "oauth_start_url" {
  description = "The admin's console: open it as the admin, sign in with Google and press Connect Google (a connection starts only from a signed-in console)."
  value       = local.console_url
}

output "console_url" {
  description = "The admin's console (oauth_callback): sign in with Google to see the connection and the bookings that need a person."
  value       = local.console_url
}

output "busy_slots_url" {
  description = "The public busy-slots endpoint for the booking page."
  value       = "${local.functions_base_url}/list_events"
}

output "join_class_url" {
  description = "The school's site POSTs (join) and DELETEs (leave) a group class's access code here."
  value       = "${local.functions_base_url}/join_class"
}

output "calendar_webhook_url" {
  description = "Where Google Calendar pushes change notifications (set on the watch channel by calendar_maintenance)."
  value       = "${local.functions_base_url}/calendar_webhook"
}

output "payment_webhook_url" {
  description = "The Webhooks URL to set in the MercadoPago application (mercadopago_enabled only)."
  value       = var.mercadopago_enabled ? "${local.functions_base_url}/payment_webhook" : null
}

output "bundle_objects" {
  description = "The source bundle each function was deployed from (named by its SHA-256)."
  value       = { for name, f in module.function : name => f.bundle_object }
}

output "payments_topic" {
  description = "Publish approved payments here."
  value       = google_pubsub_topic.payments.id
}

output "payments_dead_letter_subscription" {
  description = "Payments create_event gave up on, kept for replay."
  value       = google_pubsub_subscription.payments_dead_letter_hold.id
}

output "booking_changes_topic" {
  description = "Publish the platform's reschedules and cancellations here."
  value       = google_pubsub_topic.booking_changes.id
}

output "booking_changes_dead_letter_subscription" {
  description = "Booking changes booking_changes gave up on, kept for replay."
  value       = google_pubsub_subscription.booking_changes_dead_letter_hold.id
}

output "oauth_client_secret" {
  description = "The secret to add the OAuth client secret to (gcloud secrets versions add)."
  value       = google_secret_manager_secret.oauth_client.secret_id
}
