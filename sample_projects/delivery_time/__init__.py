"""The delivery-time sample project: predict the minutes a food delivery takes (regression)."""
