// Package deployer acts on hosts: the label-aware launch pipeline that turns
// a desired count per role into labelled, reachable, deployed hosts, and the
// removal path (drain, back up, verify, terminate).
//
// deployer defines the Cloud interface it acts through; cloud providers
// implement it. It must not import scheduler, server or any cloud package.
package deployer
