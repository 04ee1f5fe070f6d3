# Cloud Scheduler publishes a tick to calendar-maintenance; its push subscription runs
# calendar_maintenance (channel renewal, catch-up sync, reconciliation of bookings).

resource "google_cloud_scheduler_job" "calendar_maintenance" {
  project     = var.project_id
  region      = var.region
  name        = "classcal-calendar-maintenance"
  description = "Runs calendar_maintenance: watch channel upkeep, catch-up sync, reconciliation."
  schedule    = var.maintenance_schedule
  time_zone   = var.maintenance_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.calendar_maintenance.id
    # The function ignores the body; this only says where a run came from in the logs.
    data = base64encode(jsonencode({ source = "cloud-scheduler" }))
  }

  depends_on = [google_project_service.apis]
}
