"""MediaFlow operator: Kopf handlers over pure builders and deciders."""
