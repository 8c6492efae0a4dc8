// Package converge gives each host its personal treatment, as the seed's
// Capistrano recipes did, checked on the host itself: set each application
// up once, deploy its revision into releases/<revision> and switch the
// current link only once the release is complete, keep the last releases,
// run exactly the number of processes the host's instance type calls for
// (restarting only what changed), and check health before the host counts
// as ready. Before a host is terminated it drains the host's processes and,
// for a stateful role, backs the data up to an object store and verifies
// the copy; a new host of a stateful role restores the latest verified
// backup before it starts its processes.
//
// Converger implements deployer.Deployer and deployer.Drainer. Rollout
// drives a rolling deploy (tide deploy, tide rollback) over hosts the
// caller connects to. Inspect reads a host's state for tide status.
//
// Layout on a host, below its data path D:
//
//	D/apps/<app>/releases/<revision>/   a release; .tide-release marks it complete
//	D/apps/<app>/current                symlink to releases/<revision>
//	D/apps/<app>/history                revisions current pointed to, oldest first
//	D/apps/<app>/run/<i>.pid, <i>.spec  process i's pid and what it was started as
//	D/apps/<app>/logs/<i>.log           process i's output
//	D/apps/<app>/.tide-setup            hash of the setup command that ran
//	D/apps/<app>/.tide-restored         the backup restored (stateful roles)
//	D/.tide/ready                       the host converged once
//
// converge depends on deployer (the Host it acts through), config, fleet
// and objstore; it must not import cloud implementations, scheduler,
// remote or cmd. Object stores are reached through the Store interface
// declared here.
package converge
