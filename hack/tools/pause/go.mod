module mediaflow.local/hack/tools/pause

go 1.24.0
