//go:build race

package canary

// raceBuild: the race detector slows the rig several times over.
const raceBuild = true
