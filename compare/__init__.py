"""One answer() interface over every answer path, evaluation, and reports."""
