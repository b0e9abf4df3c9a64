//go:build !race

package canary

const raceBuild = false
