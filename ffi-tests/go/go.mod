module cache-monitor/ffi-tests/go

go 1.19
