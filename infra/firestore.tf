# Firestore in native mode: bookings (virtualClasses, users, userActivities), OAuth
# states (oauthStates), the connection (settings) and the calendar watch channels and
# sync state (calendarChannels, calendarSync).
#
# Queries with equality filters only (`==`, `in`), on one field or several, are served
# by Firestore's automatic single-field indexes. A query that also filters a range or
# orders by a field needs a composite index, declared below. tests/test_infra.py reads
# every query in shared/ and fails when one lacks its index.

locals {
  firestore_database = "(default)"
}

resource "google_firestore_database" "main" {
  count = var.manage_firestore_database ? 1 : 0

  project                           = var.project_id
  name                              = local.firestore_database
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  # Bookings are the school's record of paid classes: never deleted by `terraform destroy`.
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON"

  depends_on = [google_project_service.apis]
}

# OAuth states live ten minutes; Firestore deletes expired ones (usually within a day
# of expiresAt: the callback checks the expiry itself, this only keeps the collection small).
resource "google_firestore_field" "oauth_state_ttl" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "oauthStates"
  field      = "expiresAt"

  ttl_config {}

  # No single-field indexes on a TTL timestamp: nothing queries it, and indexing
  # monotonically increasing values hotspots writes.
  index_config {}

  depends_on = [google_firestore_database.main]
}

# calendar_maintenance pages through scheduled classes that have not ended yet
# (shared/stores/bookings.py: status == "scheduled", endTime > now, ordered by endTime).
# The busy slots read the pending bookings that have not ended the same way
# (shared/stores/slots.py: status == "pending", endTime > now).
resource "google_firestore_index" "bookings_scheduled_by_end" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "virtualClasses"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }

  fields {
    field_path = "endTime"
    order      = "ASCENDING"
  }

  # Firestore adds __name__ (the cursor's tie-break) itself; declared so plans show no diff.
  fields {
    field_path = "__name__"
    order      = "ASCENDING"
  }

  depends_on = [google_firestore_database.main]
}

# The slot guard reads the checkouts whose time overlaps a payment's class
# (shared/stores/slots.py: status == "pending", endTime > start, startTime < end).
# Firestore orders a query on two ranges by both fields, by name: endTime, startTime.
resource "google_firestore_index" "bookings_pending_overlapping" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "virtualClasses"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }

  fields {
    field_path = "endTime"
    order      = "ASCENDING"
  }

  fields {
    field_path = "startTime"
    order      = "ASCENDING"
  }

  fields {
    field_path = "__name__"
    order      = "ASCENDING"
  }

  depends_on = [google_firestore_database.main]
}

# Pending bookings whose start time was written as a string (shared/stores/slots.py:
# status == "pending", startTime >= ""): a range over timestamps never matches them.
resource "google_firestore_index" "bookings_pending_by_start" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "virtualClasses"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }

  fields {
    field_path = "startTime"
    order      = "ASCENDING"
  }

  fields {
    field_path = "__name__"
    order      = "ASCENDING"
  }

  depends_on = [google_firestore_database.main]
}

# Wrong access codes a user tried (join_class counts ten an hour): each document expires
# two hours after its last wrong code.
resource "google_firestore_field" "join_attempts_ttl" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "joinAttempts"
  field      = "expiresAt"

  ttl_config {}

  index_config {}

  depends_on = [google_firestore_database.main]
}

# The admin's console lists bookings that need a person, newest first
# (shared/stores/attention.py: schedulingState in [waiting, failed], ordered by
# schedulingUpdatedAt descending, then by id).
resource "google_firestore_index" "bookings_needing_a_person" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "virtualClasses"

  fields {
    field_path = "schedulingState"
    order      = "ASCENDING"
  }

  fields {
    field_path = "schedulingUpdatedAt"
    order      = "DESCENDING"
  }

  fields {
    field_path = "__name__"
    order      = "DESCENDING"
  }

  depends_on = [google_firestore_database.main]
}

# The console's refunds made (cancellationReason in [refunded, slot_taken_refunded],
# newest cancelledAt first) and classes with guests not yet invited (guestSyncPending,
# newest guestsUpdatedAt first), both in shared/stores/attention.py.
resource "google_firestore_index" "bookings_refunded" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "virtualClasses"

  fields {
    field_path = "cancellationReason"
    order      = "ASCENDING"
  }

  fields {
    field_path = "cancelledAt"
    order      = "DESCENDING"
  }

  fields {
    field_path = "__name__"
    order      = "DESCENDING"
  }

  depends_on = [google_firestore_database.main]
}

resource "google_firestore_index" "bookings_with_guests_not_invited" {
  project    = var.project_id
  database   = local.firestore_database
  collection = "virtualClasses"

  fields {
    field_path = "guestSyncPending"
    order      = "ASCENDING"
  }

  fields {
    field_path = "guestsUpdatedAt"
    order      = "DESCENDING"
  }

  fields {
    field_path = "__name__"
    order      = "DESCENDING"
  }

  depends_on = [google_firestore_database.main]
}
