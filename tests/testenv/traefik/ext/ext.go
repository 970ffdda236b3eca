// Package ext stands in for Traefik's nested module of the same path, which its go.mod replaces
// with a local directory that is not in the module zip. Traefik v3.7.5 only embeds these two
// structs inline in its dynamic HTTP configuration (pkg/config/dynamic/http_config.go) and reads
// no field of them, so empty ones build a Traefik without those extensions.
package ext

// HTTP extends the dynamic HTTP configuration.
type HTTP struct{}

// Router extends an HTTP router.
type Router struct{}
