module github.com/cache-monitor/cache-monitor/go

go 1.19
