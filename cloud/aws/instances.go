package aws

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/tideops/tide/fleet"
)

// ErrClientTokenReused says a launch reused a client token that an earlier
// launch used with other parameters (EC2's IdempotentParameterMismatch):
// a bug in whoever derives the tokens, never something to retry.
var ErrClientTokenReused = errors.New("client token already used with other parameters")

// ErrAuthFailed says EC2 refused to authenticate a call: unknown or
// inactive access key, wrong secret, a signature for another region, a
// request changed on the way, or this machine's clock too far from EC2's
// (AuthFailure, SignatureDoesNotMatch, RequestExpired and the like). The
// error wrapping it names EC2's code and what to check. Retrying does not
// help: the provider does not retry these calls, but for the one retry the
// SDK makes with its clock corrected when EC2's Date header shows it off.
var ErrAuthFailed = errors.New("ec2 authentication failed")

// ErrIncorrectState says EC2 refused a call for the instance's state
// (IncorrectInstanceState): starting an instance that is terminated,
// shutting down or still stopping. The error wrapping it names the instance
// and carries EC2's message.
var ErrIncorrectState = errors.New("the instance's state does not allow it")

// liveStates are the states List asks for: every state but terminated.
var liveStates = []string{
	string(types.InstanceStateNamePending),
	string(types.InstanceStateNameRunning),
	string(types.InstanceStateNameStopping),
	string(types.InstanceStateNameStopped),
	string(types.InstanceStateNameShuttingDown),
}

// List returns the fleet's instances in every state but terminated, reading
// every page. It returns *fleet.ThrottledError when EC2 kept throttling.
func (p *Provider) List(ctx context.Context, fleetName string) ([]fleet.Instance, error) {
	in := &ec2.DescribeInstancesInput{
		Filters: []types.Filter{
			{Name: aws.String("tag:" + fleet.TagFleet), Values: []string{fleetName}},
			{Name: aws.String("instance-state-name"), Values: liveStates},
		},
	}
	pages := ec2.NewDescribeInstancesPaginator(p.api, in, func(o *ec2.DescribeInstancesPaginatorOptions) {
		o.Limit = p.opts.PageSize
	})
	sink := pageSink{pageSize: int(p.opts.PageSize)}
	var chunks [][]fleet.Instance
	total := 0
	for pages.HasMorePages() {
		var optFns []func(*ec2.Options)
		if !p.sdkDecode {
			optFns = append(optFns, withFastDescribe(&sink))
		}
		sink.out = nil
		page, err := pages.NextPage(ctx, optFns...)
		if err != nil {
			return nil, fmt.Errorf("ec2 DescribeInstances: %w", mapError(err))
		}
		if !sink.ok {
			sink.out = sink.out[:0]
			for _, r := range page.Reservations {
				for i := range r.Instances {
					sink.out = append(sink.out, instanceFrom(&r.Instances[i]))
				}
			}
		}
		chunks = append(chunks, sink.out)
		total += len(sink.out)
	}
	switch len(chunks) {
	case 0:
		return nil, nil
	case 1:
		return chunks[0], nil
	}
	out := make([]fleet.Instance, 0, total)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out, nil
}

// Launch starts one instance carrying spec.AllTags() on the instance and its
// volumes. It is idempotent on spec.ClientToken, which must be set (at most
// 64 ASCII characters): a retry with the same token returns the instance the
// first call made. It returns *fleet.InsufficientCapacityError when EC2 has
// no capacity for the type in the zone, *fleet.ThrottledError when EC2 kept
// throttling, and an error wrapping ErrClientTokenReused when the token was
// used before with other parameters. The instance is usually still pending
// and without an address.
func (p *Provider) Launch(ctx context.Context, spec fleet.LaunchSpec) (fleet.Instance, error) {
	what := spec.Label
	if what == "" {
		what = spec.Role
	}
	if spec.ClientToken == "" {
		return fleet.Instance{}, fmt.Errorf("launching %s: no client token", what)
	}
	if len(spec.ClientToken) > 64 {
		return fleet.Instance{}, fmt.Errorf("launching %s: client token longer than 64 characters", what)
	}
	in := &ec2.RunInstancesInput{
		ClientToken:  aws.String(spec.ClientToken),
		ImageId:      aws.String(spec.Image),
		InstanceType: types.InstanceType(spec.Type),
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: sdkTags(spec.AllTags())},
			{ResourceType: types.ResourceTypeVolume, Tags: sdkTags(spec.AllTags())},
		},
	}
	if spec.Zone != "" {
		in.Placement = &types.Placement{AvailabilityZone: aws.String(spec.Zone)}
	}
	if len(p.opts.Subnets) > 0 {
		subnet, ok := p.opts.Subnets[spec.Zone]
		if !ok {
			return fleet.Instance{}, fmt.Errorf("launching %s: no subnet configured for zone %q", what, spec.Zone)
		}
		in.SubnetId = aws.String(subnet)
	}
	if p.opts.KeyName != "" {
		in.KeyName = aws.String(p.opts.KeyName)
	}
	if len(p.opts.SecurityGroupIDs) > 0 {
		in.SecurityGroupIds = p.opts.SecurityGroupIDs
	}

	out, err := p.api.RunInstances(ctx, in)
	switch {
	case err == nil:
	case isCapacity(err):
		return fleet.Instance{}, fmt.Errorf("launching %s: %w", what,
			&fleet.InsufficientCapacityError{Type: spec.Type, Zone: spec.Zone, Err: err})
	case errorCode(err) == "IdempotentParameterMismatch":
		return fleet.Instance{}, fmt.Errorf("launching %s with client token %q: %w: %w", what, spec.ClientToken, ErrClientTokenReused, err)
	default:
		return fleet.Instance{}, fmt.Errorf("launching %s: %w", what, mapError(err))
	}
	if len(out.Instances) != 1 {
		return fleet.Instance{}, fmt.Errorf("launching %s: RunInstances returned %d instances, want 1", what, len(out.Instances))
	}
	inst := instanceFrom(&out.Instances[0])
	p.log.Debug("instance launched", "instance_id", inst.ID, "label", spec.Label, "zone", inst.Zone, "type", inst.Type)
	return inst, nil
}

// Terminate terminates an instance. Terminating an instance that is already
// terminated, or shutting down, is not an error; an id EC2 does not know
// gives *fleet.NotFoundError.
func (p *Provider) Terminate(ctx context.Context, id string) error {
	_, err := p.api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		if isNotFound(err) {
			return fmt.Errorf("terminating %s: %w", id, &fleet.NotFoundError{ID: id})
		}
		return fmt.Errorf("terminating %s: %w", id, mapError(err))
	}
	p.log.Debug("instance terminated", "instance_id", id)
	return nil
}

// Start starts a stopped instance (StartInstances): it keeps its EBS
// volumes, private address and host key, goes pending and runs once it has
// booted. Starting a pending or running instance is not an error. An
// unknown id gives *fleet.NotFoundError; an instance EC2 cannot start in
// its state (terminated, shutting down, stopping) an error wrapping
// ErrIncorrectState; no capacity for its type in its zone
// *fleet.InsufficientCapacityError; throttling, once the retries are spent,
// *fleet.ThrottledError.
func (p *Provider) Start(ctx context.Context, id string) error {
	out, err := p.api.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
	switch {
	case err == nil:
	case isNotFound(err):
		return fmt.Errorf("starting %s: %w", id, &fleet.NotFoundError{ID: id})
	case isCapacity(err):
		return fmt.Errorf("starting %s: %w", id, &fleet.InsufficientCapacityError{Err: err})
	case errorCode(err) == "IncorrectInstanceState":
		return fmt.Errorf("starting %s: %w: %w", id, ErrIncorrectState, err)
	default:
		return fmt.Errorf("starting %s: %w", id, mapError(err))
	}
	for _, c := range out.StartingInstances {
		if c.PreviousState != nil && c.CurrentState != nil {
			p.log.Debug("instance started", "instance_id", id, "from", string(c.PreviousState.Name), "to", string(c.CurrentState.Name))
		}
	}
	return nil
}

// Tag adds or overwrites tags on an instance (CreateTags). An unknown id
// gives *fleet.NotFoundError.
func (p *Provider) Tag(ctx context.Context, id string, tags map[string]string) error {
	_, err := p.api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: sdkTags(tags)})
	if err != nil {
		if isNotFound(err) {
			return fmt.Errorf("tagging %s: %w", id, &fleet.NotFoundError{ID: id})
		}
		return fmt.Errorf("tagging %s: %w", id, mapError(err))
	}
	return nil
}

// WaitRunning polls until every instance in ids runs, for at most maxWait.
// Instances EC2 does not know yet (just launched) are waited for; an
// instance that terminates or stops meanwhile ends the wait with an error.
func (p *Provider) WaitRunning(ctx context.Context, ids []string, maxWait time.Duration) error {
	if len(ids) == 0 {
		return nil
	}
	w := ec2.NewInstanceRunningWaiter(p.api, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay = p.opts.WaitMinDelay
		o.MaxDelay = p.opts.WaitMaxDelay
	})
	if err := w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids}, maxWait); err != nil {
		return fmt.Errorf("waiting for %d instances to run: %w", len(ids), mapError(err))
	}
	return nil
}

// mapError turns EC2's throttling, once the retries are spent, into
// *fleet.ThrottledError, and authentication failures into errors wrapping
// ErrAuthFailed with a hint; other errors pass through.
func mapError(err error) error {
	switch {
	case isThrottle(err):
		return &fleet.ThrottledError{Err: err}
	case isAuth(err):
		return fmt.Errorf("%w (%s): %w", ErrAuthFailed, authHints[errorCode(err)], err)
	}
	return err
}

// sdkTags turns tags into the SDK's form, sorted by key so that a request
// serialises the same way every time (EC2 compares the parameters of
// idempotent retries).
func sdkTags(tags map[string]string) []types.Tag {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// instanceFrom maps an SDK instance to a fleet.Instance.
func instanceFrom(in *types.Instance) fleet.Instance {
	out := fleet.Instance{
		ID:   aws.ToString(in.InstanceId),
		Type: string(in.InstanceType),
	}
	if in.State != nil {
		out.State = fleet.State(in.State.Name)
	}
	if in.Placement != nil {
		out.Zone = aws.ToString(in.Placement.AvailabilityZone)
	}
	out.Address = aws.ToString(in.PrivateIpAddress)
	if out.Address == "" {
		out.Address = aws.ToString(in.PublicIpAddress)
	}
	if in.LaunchTime != nil {
		out.LaunchedAt = *in.LaunchTime
	}
	if len(in.Tags) > 0 {
		out.Tags = make(map[string]string, len(in.Tags))
		for _, t := range in.Tags {
			out.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		out.Fleet = out.Tags[fleet.TagFleet]
		out.Role = out.Tags[fleet.TagRole]
		out.Label = out.Tags[fleet.TagLabel]
	}
	return out
}
