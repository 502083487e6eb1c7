// An empty stand-in: google.golang.org/protobuf requires go-cmp (for its own tests), Debian's packages
// do not ship it, and no package of it is built here, but the module graph needs a go.mod for it.
module github.com/google/go-cmp

go 1.19
