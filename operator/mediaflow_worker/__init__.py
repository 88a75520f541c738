"""The program inside each MediaJob's Job pod."""
