// Debian's golang-protobuf-extensions-dev ships its sources without a go.mod, which a module replacement
// needs: this one stands in, and pbutil (the one package client_golang uses) links to Debian's copy.
module github.com/matttproud/golang_protobuf_extensions

go 1.19
