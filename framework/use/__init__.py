"""Using a finished run: predict on new data, explain predictions, export a serving artifact."""
