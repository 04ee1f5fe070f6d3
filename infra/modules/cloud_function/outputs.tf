output "url" {
  description = "The function's HTTPS URL (cloudfunctions.net)."
  value       = google_cloudfunctions2_function.this.url
}

output "service_uri" {
  description = "URL of the Cloud Run service behind the function (run.app)."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "service_name" {
  description = "Name of the Cloud Run service behind the function: invoker roles are granted on it."
  value       = local.service_name
}

output "bundle_object" {
  description = "The source bundle's object name, which holds its SHA-256."
  value       = google_storage_bucket_object.bundle.name
}

output "subscription_name" {
  description = "The push subscription of an event function (null for an HTTP function)."
  value       = var.pubsub_trigger == null ? null : google_pubsub_subscription.push[0].name
}
