# Everything an operator sets. Only the first block has no default; docs/operations.md's
# "Deploying to Google Cloud" section shows them in a table, and
# terraform.tfvars.example is a filled-in copy.

variable "project_id" {
  type        = string
  description = "The Google Cloud project classcal is deployed into (GOOGLE_CLOUD_PROJECT)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6-30 lowercase letters, digits, hyphens), not a name or number."
  }
}

variable "admin_email" {
  type        = string
  description = "The only Google account allowed to connect the school calendar (ADMIN_EMAIL)."

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.admin_email))
    error_message = "admin_email must be an email address."
  }
}

variable "auth_google_id" {
  type        = string
  description = "OAuth 2.0 client id of the web client the admin connects through (AUTH_GOOGLE_ID). Its secret never goes through Terraform: see oauth_client_secret_id. Required in oauth mode; unused (may be empty) when google_auth_mode is service_account."
  default     = ""

  validation {
    condition     = var.auth_google_id == "" || endswith(var.auth_google_id, ".apps.googleusercontent.com")
    error_message = "auth_google_id must be an OAuth client id ending in .apps.googleusercontent.com."
  }
}

variable "base_url" {
  type        = string
  description = "The school's site (BASE_URL): where the admin lands after connecting, and the default CORS origin of list_events."

  validation {
    condition     = can(regex("^https?://[^/\\s]+(/\\S*)?$", var.base_url))
    error_message = "base_url must be an absolute http(s) URL."
  }
}

variable "region" {
  type        = string
  description = "Region of the functions, the source bucket and the scheduler job."
  default     = "southamerica-east1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as southamerica-east1."
  }
}

variable "firestore_location" {
  type        = string
  description = "Location of the Firestore database (a region or a multi-region such as nam5). It cannot be changed once created."
  default     = "southamerica-east1"

  validation {
    condition     = can(regex("^[a-z0-9-]+$", var.firestore_location))
    error_message = "firestore_location must be a Firestore location id."
  }
}

variable "manage_firestore_database" {
  type        = bool
  description = "Create the (default) Firestore database. Set false when the project already has one (its indexes and TTL policy are still managed)."
  default     = true
}

variable "calendar_id" {
  type        = string
  description = "The school calendar (CALENDAR_ID): `primary` is the admin's main calendar."
  default     = "primary"

  validation {
    condition     = length(trimspace(var.calendar_id)) > 0
    error_message = "calendar_id must not be empty."
  }
}

variable "calendar_timezone" {
  type        = string
  description = "IANA time zone of class times (CALENDAR_TIMEZONE)."
  default     = "America/Argentina/Buenos_Aires"

  validation {
    condition     = can(regex("^(UTC|[A-Za-z_]+(/[A-Za-z0-9_+-]+)+)$", var.calendar_timezone))
    error_message = "calendar_timezone must be an IANA zone such as America/Argentina/Buenos_Aires."
  }
}

variable "send_updates" {
  type        = string
  description = "Calendar sendUpdates for invitations and cancellations (SEND_UPDATES)."
  default     = "all"

  validation {
    condition     = contains(["all", "externalOnly", "none"], var.send_updates)
    error_message = "send_updates must be all, externalOnly or none."
  }
}

variable "allowed_origins" {
  type        = list(string)
  description = "CORS origins allowed to read busy slots (ALLOWED_ORIGINS); empty means base_url's origin."
  default     = []

  validation {
    condition     = alltrue([for o in var.allowed_origins : o == "*" || can(regex("^https?://[^/\\s]+$", o))])
    error_message = "allowed_origins entries must be \"*\" or origins such as https://school.example (no path)."
  }
}

variable "refresh_token_secret_id" {
  type        = string
  description = "Secret Manager secret holding the admin's refresh token (REFRESH_TOKEN_SECRET); oauth_callback adds its versions."
  default     = "calendar-refresh-token"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.refresh_token_secret_id))
    error_message = "refresh_token_secret_id must be a Secret Manager id: letters, digits, - and _."
  }
}

variable "oauth_client_secret_id" {
  type        = string
  description = "Secret Manager secret holding the OAuth client secret (AUTH_GOOGLE_SECRET). Terraform creates it empty; the operator adds its value with gcloud so it never enters Terraform state."
  default     = "classcal-oauth-client-secret"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.oauth_client_secret_id))
    error_message = "oauth_client_secret_id must be a Secret Manager id: letters, digits, - and _."
  }
}

variable "mercadopago_enabled" {
  type        = bool
  description = "The school takes payments with MercadoPago: deploy payment_webhook, and give the functions that schedule MercadoPago's access token (automatic refunds). Needs the two MercadoPago secrets below; ./deploy.sh apply asks for them."
  default     = false
}

variable "mercadopago_access_token_secret_id" {
  type        = string
  description = "Secret Manager secret holding MercadoPago's access token (MERCADOPAGO_ACCESS_TOKEN). Terraform creates it empty; ./deploy.sh adds its value with gcloud."
  default     = "classcal-mercadopago-access-token"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.mercadopago_access_token_secret_id))
    error_message = "mercadopago_access_token_secret_id must be a Secret Manager id: letters, digits, - and _."
  }
}

variable "mercadopago_webhook_secret_id" {
  type        = string
  description = "Secret Manager secret holding MercadoPago's webhook secret (MERCADOPAGO_WEBHOOK_SECRET). Terraform creates it empty; ./deploy.sh adds its value with gcloud."
  default     = "classcal-mercadopago-webhook-secret"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.mercadopago_webhook_secret_id))
    error_message = "mercadopago_webhook_secret_id must be a Secret Manager id: letters, digits, - and _."
  }
}

variable "session_key_secret_id" {
  type        = string
  description = "Secret Manager secret holding the console's session signing key (SESSION_SIGNING_KEY). Terraform creates it empty; ./deploy.sh apply adds a random value with gcloud, so it never enters Terraform state."
  default     = "classcal-session-signing-key"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.session_key_secret_id))
    error_message = "session_key_secret_id must be a Secret Manager id: letters, digits, - and _."
  }
}

variable "payments_publishers" {
  type        = list(string)
  description = "IAM members allowed to publish approved payments to the payments topic, e.g. the site's service account (serviceAccount:site@other-project.iam.gserviceaccount.com)."
  default     = []

  validation {
    condition     = alltrue([for m in var.payments_publishers : can(regex("^(serviceAccount|user|group):", m))])
    error_message = "payments_publishers entries must be IAM members such as serviceAccount:NAME@PROJECT.iam.gserviceaccount.com (never allUsers)."
  }
}

variable "payments_max_delivery_attempts" {
  type        = number
  description = "Deliveries of one payment message to create_event before it is moved to the dead-letter topic."
  default     = 10

  validation {
    # Pub/Sub's own bounds for a dead-letter policy.
    condition     = var.payments_max_delivery_attempts >= 5 && var.payments_max_delivery_attempts <= 100
    error_message = "payments_max_delivery_attempts must be between 5 and 100."
  }
}

variable "payments_min_backoff_seconds" {
  type        = number
  description = "Shortest wait before a failed payment delivery is retried."
  default     = 10

  validation {
    condition     = var.payments_min_backoff_seconds >= 0 && var.payments_min_backoff_seconds <= 600
    error_message = "payments_min_backoff_seconds must be between 0 and 600."
  }
}

variable "payments_max_backoff_seconds" {
  type        = number
  description = "Longest wait between retries of a failed payment delivery (the backoff doubles up to this)."
  default     = 600

  validation {
    condition     = var.payments_max_backoff_seconds >= 0 && var.payments_max_backoff_seconds <= 600
    error_message = "payments_max_backoff_seconds must be between 0 and 600."
  }
}

variable "booking_changes_publishers" {
  type        = list(string)
  description = "IAM members allowed to publish reschedules and cancellations to the booking-changes topic, e.g. the platform's service account (serviceAccount:platform@other-project.iam.gserviceaccount.com)."
  default     = []

  validation {
    condition     = alltrue([for m in var.booking_changes_publishers : can(regex("^(serviceAccount|user|group):", m))])
    error_message = "booking_changes_publishers entries must be IAM members such as serviceAccount:NAME@PROJECT.iam.gserviceaccount.com (never allUsers)."
  }
}

variable "booking_changes_max_delivery_attempts" {
  type        = number
  description = "Deliveries of one booking-change message to booking_changes before it is moved to the dead-letter topic."
  default     = 10

  validation {
    condition     = var.booking_changes_max_delivery_attempts >= 5 && var.booking_changes_max_delivery_attempts <= 100
    error_message = "booking_changes_max_delivery_attempts must be between 5 and 100."
  }
}

variable "maintenance_schedule" {
  type        = string
  description = "Cron schedule of calendar_maintenance (channel renewal, catch-up sync, reconciliation)."
  default     = "0 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.maintenance_schedule))) == 5
    error_message = "maintenance_schedule must be a five-field cron expression such as \"0 * * * *\"."
  }
}

variable "maintenance_time_zone" {
  type        = string
  description = "Time zone the maintenance schedule is read in."
  default     = "Etc/UTC"
}

variable "log_level" {
  type        = string
  description = "Log level of every function (LOG_LEVEL)."
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "min_instances" {
  type        = number
  description = "Instances of each public function (list_events, oauth_callback, calendar_webhook) kept running: 0 scales to zero and the first request after idling waits for a cold start; 1 or more removes that wait and is billed while idle (docs/terraform.md). The event functions always scale to zero."
  default     = 0

  validation {
    condition     = var.min_instances >= 0 && floor(var.min_instances) == var.min_instances
    error_message = "min_instances must be a whole number, 0 or more."
  }
}

variable "extra_environment" {
  type        = map(string)
  description = "More settings for every function, e.g. EVENT_SUMMARY or RECONCILE_GRACE_MINUTES (docs/configuration.md). Never a secret."
  default     = {}

  validation {
    # Plain environment variables are readable by anyone who can view the function.
    condition     = alltrue([for k in keys(var.extra_environment) : !can(regex("SECRET|TOKEN|KEY|PASSWORD", upper(k)))])
    error_message = "extra_environment must not carry secrets: put them in Secret Manager."
  }

  validation {
    # Both only make sense on a developer's machine (the local Google sandbox, plain-http OAuth).
    condition     = !contains(keys(var.extra_environment), "GOOGLE_SANDBOX_URL") && !contains(keys(var.extra_environment), "OAUTHLIB_INSECURE_TRANSPORT")
    error_message = "extra_environment must not point the functions at the local sandbox or allow plain-http OAuth."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels added to every resource that takes labels."
  default     = { app = "classcal" }
}

variable "google_auth_mode" {
  type        = string
  description = "How the functions reach Google Calendar (GOOGLE_AUTH_MODE): oauth, the admin's refresh token kept in Secret Manager; or service_account, one service account acting as admin_email through the Workspace domain's delegation, keyless (delegation.tf)."
  default     = "oauth"

  validation {
    condition     = contains(["oauth", "service_account"], var.google_auth_mode)
    error_message = "google_auth_mode must be oauth or service_account."
  }
}
