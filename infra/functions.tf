# The functions: every folder of functions/ with a main.py, each deployed by
# modules/cloud_function from build/<name>.zip (./deploy.sh package makes them).

locals {
  functions_root = "${path.module}/../functions"
  build_root     = "${path.module}/../build"

  discovered_functions = toset([for f in fileset(local.functions_root, "*/main.py") : dirname(f)])

  # What each function is, how it is called and what it may touch. iam.tf turns
  # `public`, `firestore`, `refresh_token`, `secrets` and `publishes` into bindings;
  # nothing else grants a function anything.
  #   trigger       http: called over HTTPS; pubsub: pushed each message of `topic`
  #   public        callable by anyone (allUsers); otherwise only by its push subscription
  #   firestore     none | read | readwrite
  #   refresh_token none (never acts in Google) | read (access the newest version)
  #                 | rotate (also add and disable versions)
  #   secrets       environment variables read from Secret Manager (secrets.tf)
  #   publishes     topics it may publish to (roles/pubsub.publisher on each; absent: none)
  #
  # With var.mercadopago_enabled the functions that may refund a slot-taken booking
  # (create_event and calendar_maintenance both schedule) read MercadoPago's access token,
  # and payment_webhook is deployed; without it, payment_webhook is not deployed.

  function_specs = {
    create_event = {
      entry_point   = "create_event"
      trigger       = "pubsub"
      topic         = "payments"
      public        = false
      firestore     = "readwrite"
      refresh_token = "read"
      secrets       = var.mercadopago_enabled ? ["AUTH_GOOGLE_SECRET", "MERCADOPAGO_ACCESS_TOKEN"] : ["AUTH_GOOGLE_SECRET"]
      publishes     = []
      environment   = {}
      # Retries back off, then the message is dead-lettered (docs/operations.md: recovering it).
      delivery = {
        max_attempts      = var.payments_max_delivery_attempts
        dead_letter_topic = "payments-dead-letter"
        min_backoff       = var.payments_min_backoff_seconds
        max_backoff       = var.payments_max_backoff_seconds
        retention         = "604800s"
      }
      # Calendar retries and Meet conference polling take tens of seconds at worst.
      timeout       = 120
      max_instances = 10
      memory        = "512Mi"
    }

    # The platform's reschedules and cancellations: the same needs as create_event (it
    # patches or deletes the class's event as the admin), fed by its own topic.
    booking_changes = {
      entry_point   = "booking_changes"
      trigger       = "pubsub"
      topic         = "booking-changes"
      public        = false
      firestore     = "readwrite"
      refresh_token = "read"
      secrets       = ["AUTH_GOOGLE_SECRET"]
      publishes     = []
      environment   = {}
      delivery = {
        max_attempts      = var.booking_changes_max_delivery_attempts
        dead_letter_topic = "booking-changes-dead-letter"
        min_backoff       = 10
        max_backoff       = 600
        retention         = "604800s"
      }
      timeout       = 60
      max_instances = 5
      memory        = "256Mi"
    }

    list_events = {
      entry_point = "list_events"
      trigger     = "http"
      topic       = null
      public      = true
      # Busy slots come from classcal's Firestore mirror: no Google token, no secret.
      firestore     = "read"
      refresh_token = "none"
      secrets       = []
      publishes     = []
      environment   = { for k, v in { ALLOWED_ORIGINS = join(",", var.allowed_origins) } : k => v if v != "" }
      delivery      = null
      timeout       = 30
      max_instances = 20
      memory        = "256Mi"
    }

    oauth_callback = {
      entry_point   = "oauth_callback"
      trigger       = "http"
      topic         = null
      public        = true
      firestore     = "readwrite"
      refresh_token = "rotate"
      secrets       = ["AUTH_GOOGLE_SECRET", "SESSION_SIGNING_KEY"]
      publishes     = []
      environment   = { GOOGLE_REDIRECT_URI = local.google_redirect_uri }
      delivery      = null
      timeout       = 60
      max_instances = 2
      memory        = "256Mi"
    }

    # Google Calendar's push notifications. Public, and so holding no Google token and
    # no secret: it checks the channel in Firestore (and records the message number),
    # then publishes the change to calendar-changes for calendar_sync.
    calendar_webhook = {
      entry_point   = "calendar_webhook"
      trigger       = "http"
      topic         = null
      public        = true
      firestore     = "readwrite"
      refresh_token = "none"
      secrets       = []
      publishes     = ["calendar-changes"]
      environment   = { CALENDAR_CHANGES_TOPIC = google_pubsub_topic.calendar_changes.name }
      delivery      = null
      timeout       = 30
      max_instances = 5
      memory        = "256Mi"
    }

    # Private: the incremental sync with the school's token, for each change published
    # by calendar_webhook (a burst is coalesced by the sync lease).
    calendar_sync = {
      entry_point   = "calendar_sync"
      trigger       = "pubsub"
      topic         = "calendar-changes"
      public        = false
      firestore     = "readwrite"
      refresh_token = "read"
      secrets       = ["AUTH_GOOGLE_SECRET"]
      publishes     = []
      environment   = {}
      # A change only says that the calendar changed: a failed one is retried for a
      # while, then dropped; the next change, or the hourly maintenance sync, lists it.
      delivery = {
        max_attempts      = null
        dead_letter_topic = null
        min_backoff       = 10
        max_backoff       = 600
        retention         = "86400s"
      }
      timeout       = 120
      max_instances = 3
      memory        = "512Mi"
    }

    # The school's site: a student joins or leaves a group class with its access code.
    # Firestore only: it records the change, then nudges guest_invitations (the one
    # topic it may publish to); it never holds the school's Google token or any secret.
    join_class = {
      entry_point   = "join_class"
      trigger       = "http"
      topic         = null
      public        = true
      firestore     = "readwrite"
      refresh_token = "none"
      secrets       = []
      publishes     = ["guest-changes"]
      environment = {
        for k, v in {
          ALLOWED_ORIGINS     = join(",", var.allowed_origins)
          GUEST_CHANGES_TOPIC = google_pubsub_topic.guest_changes.name
        } : k => v if v != ""
      }
      delivery      = null
      timeout       = 30
      max_instances = 20
      memory        = "256Mi"
    }

    # Private: makes a group class's guests attendees of its Calendar event (and removes
    # those who left), with the school's token, for each nudge on guest-changes.
    guest_invitations = {
      entry_point   = "guest_invitations"
      trigger       = "pubsub"
      topic         = "guest-changes"
      public        = false
      firestore     = "readwrite"
      refresh_token = "read"
      secrets       = ["AUTH_GOOGLE_SECRET"]
      publishes     = []
      environment   = {}
      # A nudge only names a booking: after the attempts it is dead-lettered, and the
      # hourly maintenance run makes whatever the booking still has pending.
      delivery = {
        max_attempts      = 10
        dead_letter_topic = "guest-changes-dead-letter"
        min_backoff       = 10
        max_backoff       = 300
        retention         = "86400s"
      }
      timeout       = 120
      max_instances = 5
      memory        = "512Mi"
    }

    # MercadoPago calls it; it checks the x-signature itself, reads bookings, publishes.
    payment_webhook = {
      entry_point   = "payment_webhook"
      trigger       = "http"
      topic         = null
      public        = true
      firestore     = "read"
      refresh_token = "none"
      secrets       = ["MERCADOPAGO_WEBHOOK_SECRET", "MERCADOPAGO_ACCESS_TOKEN"]
      publishes     = ["payments"]
      environment   = { PAYMENTS_TOPIC = "payments" }
      delivery      = null
      # MercadoPago waits about 22 s; every call inside is bounded to a few seconds.
      timeout       = 30
      max_instances = 5
      memory        = "256Mi"
    }

    calendar_maintenance = {
      entry_point   = "calendar_maintenance"
      trigger       = "pubsub"
      topic         = "calendar-maintenance"
      public        = false
      firestore     = "readwrite"
      refresh_token = "read"
      secrets       = var.mercadopago_enabled ? ["AUTH_GOOGLE_SECRET", "MERCADOPAGO_ACCESS_TOKEN"] : ["AUTH_GOOGLE_SECRET"]
      publishes     = []
      environment   = { CALENDAR_WEBHOOK_URL = "${local.functions_base_url}/calendar_webhook" }
      # A failed run is retried a few times; the next scheduled run does the same work anyway.
      delivery = {
        max_attempts      = null
        dead_letter_topic = null
        min_backoff       = 30
        max_backoff       = 600
        retention         = "3600s"
      }
      timeout       = 540
      max_instances = 1
      memory        = "512Mi"
    }
  }

  functions = { for name in local.discovered_functions : name => local.function_specs[name] if contains(keys(local.function_specs), name) && (var.mercadopago_enabled || name != "payment_webhook") }

  # The secrets each function gets: in service_account mode the Calendar-using functions
  # need no OAuth client secret.
  function_secrets = { for name, f in local.functions : name => local.delegated && f.refresh_token != "none" ? [] : f.secrets }

  # Each function's runtime identity (delegation.tf: shared in service_account mode).
  runtime_emails = merge(
    { for name, f in local.own_account_functions : name => google_service_account.function[name].email },
    { for name, f in local.calendar_functions : name => google_service_account.calendar[0].email if local.delegated },
  )
  runtime_members = merge(
    { for name, f in local.own_account_functions : name => google_service_account.function[name].member },
    { for name, f in local.calendar_functions : name => google_service_account.calendar[0].member if local.delegated },
  )

  # Topic name => id, spelled out from the name so plans show it before the topic exists.
  topics = {
    "payments"                    = "projects/${var.project_id}/topics/${google_pubsub_topic.payments.name}"
    "payments-dead-letter"        = "projects/${var.project_id}/topics/${google_pubsub_topic.payments_dead_letter.name}"
    "calendar-maintenance"        = "projects/${var.project_id}/topics/${google_pubsub_topic.calendar_maintenance.name}"
    "guest-changes"               = "projects/${var.project_id}/topics/${google_pubsub_topic.guest_changes.name}"
    "calendar-changes"            = "projects/${var.project_id}/topics/${google_pubsub_topic.calendar_changes.name}"
    "guest-changes-dead-letter"   = "projects/${var.project_id}/topics/${google_pubsub_topic.guest_changes_dead_letter.name}"
    "booking-changes"             = "projects/${var.project_id}/topics/${google_pubsub_topic.booking_changes.name}"
    "booking-changes-dead-letter" = "projects/${var.project_id}/topics/${google_pubsub_topic.booking_changes_dead_letter.name}"
  }

  # A 2nd gen function's cloudfunctions.net URL is known before it exists, which breaks
  # the cycle of oauth_callback needing its own URL as its redirect URI.
  functions_base_url  = "https://${var.region}-${var.project_id}.cloudfunctions.net"
  google_redirect_uri = "${local.functions_base_url}/oauth_callback/callback"

  common_environment = {
    GOOGLE_CLOUD_PROJECT = var.project_id
    AUTH_GOOGLE_ID       = var.auth_google_id
    ADMIN_EMAIL          = var.admin_email
    BASE_URL             = var.base_url
    CALENDAR_ID          = var.calendar_id
    CALENDAR_TIMEZONE    = var.calendar_timezone
    REFRESH_TOKEN_SECRET = var.refresh_token_secret_id
    SEND_UPDATES         = var.send_updates
    LOG_LEVEL            = var.log_level
    # Cloud Functions sets this itself; declaring it keeps every plan from showing a diff.
    LOG_EXECUTION_ID = "true"
  }
}

# A folder with a main.py and no row in function_specs would be silently skipped: stop the plan.
resource "terraform_data" "function_specs_complete" {
  input = sort(tolist(local.discovered_functions))

  lifecycle {
    precondition {
      condition     = length(setsubtract(local.discovered_functions, keys(local.function_specs))) == 0
      error_message = "functions/ has ${join(", ", setsubtract(local.discovered_functions, keys(local.function_specs)))} without a row in function_specs (infra/functions.tf): say its entry point, trigger and needs there."
    }
  }
}

# Source bundles, one object per content hash (the module names them).
resource "google_storage_bucket" "sources" {
  project                     = var.project_id
  name                        = "${var.project_id}-classcal-sources"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Only bundles live here, all rebuilt from the repository by ./deploy.sh package.
  force_destroy = true

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

module "function" {
  source   = "./modules/cloud_function"
  for_each = local.functions

  project_id            = var.project_id
  region                = var.region
  name                  = each.key
  entry_point           = each.value.entry_point
  bundle_path           = "${local.build_root}/${each.key}.zip"
  source_bucket         = google_storage_bucket.sources.name
  service_account_email = local.runtime_emails[each.key]
  build_service_account = google_service_account.build.id

  environment = merge(var.extra_environment, local.common_environment, each.value.environment, contains(keys(local.calendar_functions), each.key) ? local.delegation_environment : {})
  secret_environment = {
    for env_name in local.function_secrets[each.key] : env_name => local.secret_environment_sources[env_name]
  }

  # Public functions take traffic from the internet; the event functions only from
  # Pub/Sub push in this project.
  ingress         = each.value.public ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
  timeout_seconds = each.value.timeout
  max_instances   = each.value.max_instances
  memory          = each.value.memory
  # Warm instances only where a person waits for the answer; Pub/Sub push retries anyway.
  min_instances = each.value.public ? var.min_instances : 0

  pubsub_trigger = each.value.trigger != "pubsub" ? null : {
    topic                 = local.topics[each.value.topic]
    invoker_service_email = google_service_account.invoker[each.key].email
    max_delivery_attempts = each.value.delivery.max_attempts
    dead_letter_topic     = each.value.delivery.dead_letter_topic == null ? null : local.topics[each.value.delivery.dead_letter_topic]
    minimum_backoff       = "${each.value.delivery.min_backoff}s"
    maximum_backoff       = "${each.value.delivery.max_backoff}s"
    message_retention     = each.value.delivery.retention
  }

  # The service account must be able to read its secrets before Cloud Run starts the
  # first instance, and the build account must be able to build.
  depends_on = [
    google_secret_manager_secret_iam_member.secret_environment,
    google_service_account_iam_member.calendar_signs_as_itself,
    google_project_iam_member.calendar,
    google_project_iam_member.build,
    terraform_data.function_specs_complete,
  ]
}
