"""The JSON API under ``/api/v1`` (one router per resource) and the old firmware's endpoint."""
