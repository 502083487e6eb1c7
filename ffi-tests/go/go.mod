module cache-monitor/ffi-tests/go

go 1.19

require github.com/cache-monitor/cache-monitor/go v0.0.0

replace github.com/cache-monitor/cache-monitor/go => ../../go
