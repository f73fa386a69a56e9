// Package deploy holds the deployment files (container image, compose file, Kubernetes manifests, systemd unit) and the tests that check them.
package deploy
