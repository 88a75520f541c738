"""Upload endpoints: streaming multipart bodies into object storage and MediaJobs."""
