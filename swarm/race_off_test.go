//go:build !race

package swarm

const raceBuild = false
