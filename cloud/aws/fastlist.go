package aws

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/tideops/tide/fleet"
)

// Listing a large fleet is dominated by XML decoding: the SDK decodes every
// field of every instance through encoding/xml, about 50 µs of CPU per
// instance, half a second for 10,000. List reads only a handful of fields,
// so it decodes DescribeInstances pages itself with a small scanner over the
// bytes (about five times cheaper) and hands the SDK a body holding only the
// page's nextToken, so that signing, retries, pagination and error decoding
// stay the SDK's. When the scanner meets anything it does not understand it
// leaves the page to the SDK, whose result List then maps as usual.

// pageSink receives the instances of the last successfully scanned page.
type pageSink struct {
	instances []fleet.Instance
	ok        bool // the page was scanned; otherwise the SDK decoded it
}

// withFastDescribe returns a per-call option that scans a DescribeInstances
// response into sink.
func withFastDescribe(sink *pageSink) func(*ec2.Options) {
	return func(o *ec2.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Deserialize.Insert(fastDescribe{sink: sink}, "OperationDeserializer", middleware.After)
		})
	}
}

// fastDescribe is a deserialize middleware placed inside the SDK's
// DescribeInstances deserializer: it sees the raw response first.
type fastDescribe struct{ sink *pageSink }

func (fastDescribe) ID() string { return "TideFastDescribeInstances" }

func (m fastDescribe) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
	middleware.DeserializeOutput, middleware.Metadata, error,
) {
	out, md, err := next.HandleDeserialize(ctx, in)
	m.sink.ok, m.sink.instances = false, nil
	resp, isHTTP := out.RawResponse.(*smithyhttp.Response)
	if err != nil || !isHTTP || resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return out, md, err
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 && resp.ContentLength < 64<<20 {
		buf.Grow(int(resp.ContentLength) + bytes.MinRead)
	}
	_, err = buf.ReadFrom(resp.Body)
	body := buf.Bytes()
	resp.Body.Close()
	if err != nil {
		return out, md, err // a transport error: retryable like any other
	}
	instances, token, scanErr := scanDescribeInstances(body)
	if scanErr != nil {
		resp.Body = io.NopCloser(bytes.NewReader(body)) // the SDK decodes it
		return out, md, nil
	}
	m.sink.instances, m.sink.ok = instances, true
	var stub bytes.Buffer
	if token != "" {
		stub.WriteString("<DescribeInstancesResponse><nextToken>")
		_ = xml.EscapeText(&stub, []byte(token))
		stub.WriteString("</nextToken></DescribeInstancesResponse>")
	}
	resp.Body = io.NopCloser(&stub)
	resp.ContentLength = int64(stub.Len())
	return out, md, nil
}

// errUnsupported says the scanner met XML it leaves to the SDK.
var errUnsupported = errors.New("unsupported xml")

// scanDescribeInstances reads a DescribeInstances response body: the
// instances' id, type, state, zone, addresses, launch time and tags, and the
// next page's token. Element names match case-insensitively and without
// namespace prefixes, as the SDK matches them. Only direct children of
// reservationSet>item>instancesSet>item count (network interfaces carry
// addresses of their own).
func scanDescribeInstances(b []byte) (instances []fleet.Instance, nextToken string, err error) {
	st := scanState{interned: make(map[string]string, 64)}
	var (
		path     [16][]byte // element names from the root
		depth    int
		cur      *fleet.Instance
		private  string
		public   string
		tagKey   string
		tagValue string
		textFrom int // where the current element's content starts
	)
	i := 0
	for {
		lt := bytes.IndexByte(b[i:], '<')
		if lt < 0 {
			if depth != 0 || len(bytes.TrimSpace(b[i:])) != 0 {
				return nil, "", fmt.Errorf("%w: truncated document", errUnsupported)
			}
			break
		}
		i += lt
		rest := b[i:]
		switch {
		case bytes.HasPrefix(rest, []byte("<?")):
			end := bytes.Index(rest, []byte("?>"))
			if end < 0 || depth != 0 {
				return nil, "", fmt.Errorf("%w: processing instruction", errUnsupported)
			}
			i += end + 2
			continue
		case bytes.HasPrefix(rest, []byte("<!")):
			// Comments, CDATA and doctypes: rare in EC2 output, left to the SDK.
			return nil, "", fmt.Errorf("%w: markup declaration", errUnsupported)
		case bytes.HasPrefix(rest, []byte("</")):
			gt := bytes.IndexByte(rest, '>')
			if gt < 0 || depth == 0 {
				return nil, "", fmt.Errorf("%w: bad end tag", errUnsupported)
			}
			name := localName(bytes.TrimSpace(rest[2:gt]))
			if !bytes.EqualFold(name, path[depth-1]) {
				return nil, "", fmt.Errorf("%w: mismatched end tag", errUnsupported)
			}
			text := b[textFrom:i]
			if err := st.endElement(path[:depth], text, &cur, &private, &public, &tagKey, &tagValue, &nextToken, &instances); err != nil {
				return nil, "", err
			}
			depth--
			i += gt + 1
			textFrom = i
			continue
		}
		// A start tag, maybe empty (<x/>), maybe with attributes whose
		// quoted values may hold '>'.
		j := 1
		for j < len(rest) && !isSpace(rest[j]) && rest[j] != '>' && rest[j] != '/' {
			j++
		}
		name := localName(rest[1:j])
		if len(name) == 0 {
			return nil, "", fmt.Errorf("%w: bad start tag", errUnsupported)
		}
		selfClosing := false
		for {
			if j >= len(rest) {
				return nil, "", fmt.Errorf("%w: unterminated start tag", errUnsupported)
			}
			c := rest[j]
			if c == '>' {
				break
			}
			if c == '"' || c == '\'' {
				q := bytes.IndexByte(rest[j+1:], c)
				if q < 0 {
					return nil, "", fmt.Errorf("%w: unterminated attribute", errUnsupported)
				}
				j += q + 2
				continue
			}
			if c == '/' && j+1 < len(rest) && rest[j+1] == '>' {
				selfClosing = true
				j++
				break
			}
			j++
		}
		if depth == len(path) {
			return nil, "", fmt.Errorf("%w: too deep", errUnsupported)
		}
		path[depth] = name
		depth++
		st.startElement(path[:depth], &cur, &private, &public, &tagKey, &tagValue)
		i += j + 1
		textFrom = i
		if selfClosing {
			if err := st.endElement(path[:depth], nil, &cur, &private, &public, &tagKey, &tagValue, &nextToken, &instances); err != nil {
				return nil, "", err
			}
			depth--
		}
	}
	return instances, nextToken, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// localName drops a namespace prefix.
func localName(n []byte) []byte {
	if k := bytes.IndexByte(n, ':'); k >= 0 {
		return n[k+1:]
	}
	return n
}

// is reports whether the element names p equal names, case-insensitively.
func is(p [][]byte, names ...string) bool {
	if len(p) != len(names) {
		return false
	}
	for k, n := range names {
		if !bytes.EqualFold(p[k], []byte(n)) {
			return false
		}
	}
	return true
}

// instancePath is where instances sit, below the root element.
var instancePath = []string{"reservationSet", "item", "instancesSet", "item"}

// underInstance returns the names below an instance element, or nil. The
// full path is compared only for the instance element itself; below it,
// the scanner's own record of being inside an instance is trusted.
func (st *scanState) underInstance(p [][]byte) [][]byte {
	if len(p) < 5 {
		return nil
	}
	if len(p) > 5 {
		if !st.inInstance {
			return nil
		}
		return p[5:]
	}
	for k, n := range instancePath {
		if !bytes.EqualFold(p[k+1], []byte(n)) {
			return nil
		}
	}
	return p[5:]
}

func (st *scanState) startElement(p [][]byte, cur **fleet.Instance, private, public, tagKey, tagValue *string) {
	if len(p) == 5 && st.underInstance(p) != nil {
		*cur = &fleet.Instance{}
		*private, *public = "", ""
		st.inInstance = true
		return
	}
	if len(p) == 7 && st.inInstance && is(p[5:], "tagSet", "item") {
		*tagKey, *tagValue = "", ""
	}
}

func (st *scanState) endElement(p [][]byte, raw []byte, cur **fleet.Instance, private, public, tagKey, tagValue, nextToken *string, instances *[]fleet.Instance) error {
	if len(p) == 2 && bytes.EqualFold(p[1], []byte("nextToken")) {
		s, err := text(raw)
		*nextToken = s
		return err
	}
	rel := st.underInstance(p)
	if rel == nil || *cur == nil {
		return nil
	}
	if len(rel) > 3 {
		return nil // deeper than any field read
	}
	in := *cur
	var err error
	switch {
	case len(rel) == 0: // the instance ends
		in.Address = *private
		if in.Address == "" {
			in.Address = *public
		}
		if in.Tags != nil {
			in.Fleet, in.Role, in.Label = in.Tags[fleet.TagFleet], in.Tags[fleet.TagRole], in.Tags[fleet.TagLabel]
		}
		*instances = append(*instances, *in)
		*cur = nil
		st.inInstance = false
	case is(rel, "instanceId"):
		in.ID, err = text(raw)
	case is(rel, "instanceType"):
		in.Type, err = st.text(raw)
	case is(rel, "privateIpAddress"):
		*private, err = text(raw)
	case is(rel, "ipAddress"):
		*public, err = text(raw)
	case is(rel, "launchTime"):
		var s string
		if s, err = text(raw); err == nil {
			in.LaunchedAt, err = time.Parse(time.RFC3339Nano, s)
		}
	case is(rel, "instanceState", "name"):
		var s string
		s, err = st.text(raw)
		in.State = fleet.State(s)
	case is(rel, "placement", "availabilityZone"):
		in.Zone, err = st.text(raw)
	case is(rel, "tagSet", "item", "key"):
		*tagKey, err = st.text(raw)
	case is(rel, "tagSet", "item", "value"):
		if bytes.EqualFold([]byte(*tagKey), []byte(fleet.TagLabel)) {
			*tagValue, err = text(raw) // unique per instance
		} else {
			*tagValue, err = st.text(raw)
		}
	case is(rel, "tagSet", "item"):
		if in.Tags == nil {
			in.Tags = make(map[string]string, 4)
		}
		in.Tags[*tagKey] = *tagValue
	}
	return err
}

// scanState holds what one scan shares across instances.
type scanState struct {
	// interned keeps one copy of the strings that repeat across
	// instances (types, zones, states, tag keys and most tag values).
	interned map[string]string
	// inInstance says the scanner is inside an instance element.
	inInstance bool
}

// text is the package-level text, with repeated values shared.
func (st *scanState) text(raw []byte) (string, error) {
	if s, ok := st.interned[string(raw)]; ok {
		return s, nil
	}
	s, err := text(raw)
	if err == nil && len(st.interned) < 4096 {
		st.interned[string(raw)] = s
	}
	return s, err
}

// text decodes a leaf element's content: character data with the five XML
// entities and character references.
func text(raw []byte) (string, error) {
	if bytes.IndexByte(raw, '<') >= 0 {
		return "", fmt.Errorf("%w: mixed content", errUnsupported)
	}
	if bytes.IndexByte(raw, '&') < 0 {
		return string(raw), nil
	}
	var s string
	// encoding/xml handles entities and character references exactly.
	d := xml.NewDecoder(io.MultiReader(bytes.NewReader([]byte("<x>")), bytes.NewReader(raw), bytes.NewReader([]byte("</x>"))))
	if err := d.Decode(&s); err != nil {
		return "", fmt.Errorf("%w: %v", errUnsupported, err)
	}
	return s, nil
}
