module github.com/cache-monitor/cache-monitor/go/compare

go 1.19

require (
	github.com/cache-monitor/cache-monitor/go v0.0.0
	github.com/prometheus/client_golang v1.14.0
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.1.2 // indirect
	github.com/golang/protobuf v1.5.2 // indirect
	github.com/matttproud/golang_protobuf_extensions v1.0.4 // indirect
	github.com/prometheus/client_model v0.3.0 // indirect
	github.com/prometheus/common v0.37.0 // indirect
	github.com/prometheus/procfs v0.8.0 // indirect
	golang.org/x/sys v0.3.0 // indirect
	google.golang.org/protobuf v1.28.1 // indirect
)

replace github.com/cache-monitor/cache-monitor/go => ../

// client_golang and the modules it imports, as Debian's golang-github-prometheus-client-golang-dev
// installs them (no module proxy needed); debian/ holds two stand-ins (see their go.mod).
replace (
	github.com/google/go-cmp => ./debian/go-cmp
	github.com/beorn7/perks => /usr/share/gocode/src/github.com/beorn7/perks
	github.com/cespare/xxhash/v2 => /usr/share/gocode/src/github.com/cespare/xxhash
	github.com/golang/protobuf => /usr/share/gocode/src/github.com/golang/protobuf
	github.com/matttproud/golang_protobuf_extensions => ./debian/golang_protobuf_extensions
	github.com/prometheus/client_golang => /usr/share/gocode/src/github.com/prometheus/client_golang
	github.com/prometheus/client_model => /usr/share/gocode/src/github.com/prometheus/client_model
	github.com/prometheus/common => /usr/share/gocode/src/github.com/prometheus/common
	github.com/prometheus/procfs => /usr/share/gocode/src/github.com/prometheus/procfs
	golang.org/x/sys => /usr/share/gocode/src/golang.org/x/sys
	google.golang.org/protobuf => /usr/share/gocode/src/google.golang.org/protobuf
)
