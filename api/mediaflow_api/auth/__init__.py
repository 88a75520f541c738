"""Auth: users stored as Kubernetes Secrets, argon2id passwords, JWTs, a rate limit."""
