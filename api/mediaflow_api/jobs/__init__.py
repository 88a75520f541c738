"""Jobs: MediaJobs created for users, and the job objects the API answers with."""
