variable "project_id" {
  type        = string
  description = "Project the function runs in."
}

variable "region" {
  type        = string
  description = "Region of the function and its Cloud Run service."
}

variable "name" {
  type        = string
  description = "Function name; also its URL path on cloudfunctions.net."

  validation {
    condition     = can(regex("^[a-z][a-z0-9_-]{0,61}[a-z0-9]$", var.name))
    error_message = "name must start with a letter and hold only lowercase letters, digits, - and _."
  }
}

variable "entry_point" {
  type        = string
  description = "The Python function in main.py that functions-framework serves."
}

variable "runtime" {
  type        = string
  description = "Cloud Functions runtime."
  default     = "python312"
}

variable "bundle_path" {
  type        = string
  description = "Path of the zipped source (main.py, shared/, requirements.txt) made by ./deploy.sh package."
}

variable "source_bucket" {
  type        = string
  description = "Bucket the bundle is uploaded to."
}

variable "service_account_email" {
  type        = string
  description = "The function's own runtime service account; its roles are granted by the caller."
}

variable "build_service_account" {
  type        = string
  description = "Service account Cloud Build builds the function as (projects/P/serviceAccounts/EMAIL)."
}

variable "environment" {
  type        = map(string)
  description = "Plain environment variables. Never a secret: use secret_environment."
  default     = {}
}

variable "secret_environment" {
  type        = map(string)
  description = "Environment variable name => id of the Secret Manager secret whose latest version it holds."
  default     = {}
}

variable "ingress" {
  type        = string
  description = "Who may reach the function over the network (IAM still decides who may invoke it)."
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress)
    error_message = "ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "timeout_seconds" {
  type        = number
  description = "Request timeout; also the push subscription's acknowledgement deadline (at most 540 s for event delivery)."
  default     = 60

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 540
    error_message = "timeout_seconds must be between 1 and 540."
  }
}

variable "max_instances" {
  type        = number
  description = "Most instances that may run at once."
  default     = 5
}

variable "min_instances" {
  type        = number
  description = "Instances kept running even without traffic (no cold start for them; billed while idle). 0: scale to zero."
  default     = 0

  validation {
    condition     = var.min_instances >= 0 && floor(var.min_instances) == var.min_instances
    error_message = "min_instances must be a whole number, 0 or more."
  }
}

variable "memory" {
  type        = string
  description = "Memory of one instance, e.g. 256Mi."
  default     = "256Mi"
}

variable "labels" {
  type        = map(string)
  description = "Labels of the function."
  default     = {}
}

variable "pubsub_trigger" {
  type = object({
    topic                 = string # topic id: projects/P/topics/T
    invoker_service_email = string # the identity push requests are signed as
    max_delivery_attempts = optional(number)
    dead_letter_topic     = optional(string)
    minimum_backoff       = optional(string, "10s")
    maximum_backoff       = optional(string, "600s")
    message_retention     = optional(string, "604800s")
  })
  description = "Deliver every message of a topic to the function (a CloudEvent function). null: an HTTP function."
  default     = null

  validation {
    # A conditional, not ||: Terraform evaluates both sides of || even when the left is true.
    condition     = var.pubsub_trigger == null ? true : (var.pubsub_trigger.dead_letter_topic == null) == (var.pubsub_trigger.max_delivery_attempts == null)
    error_message = "pubsub_trigger needs both dead_letter_topic and max_delivery_attempts, or neither."
  }
}
