"""The ticket-routing sample project: route a support ticket to one of five queues
(multiclass)."""
