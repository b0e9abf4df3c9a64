// Package capacity is the capacity plan of darktime report capacity
// --forecast: a model of every resource a deployment runs out of — server
// CPU per delivery, per publish and per connection, memory and open files
// per connection, bytes written per delivery, Redis CPU per publish and
// per node it fans out to — fitted by least squares to the per-second
// resource samples of ramp runs (runner/resourcefile), with each
// coefficient's standard error and its spread over repeated runs; a
// forecast (peak users, channels, their distribution, messages/s overall
// and on the hottest channel, event size) sized into nodes, Redis shards
// and bandwidth with the resource that binds; and the check of a plan:
// the forecast scaled down to what one machine holds, run as a scenario
// and measured the same way, predicted against measured per resource.
package capacity
