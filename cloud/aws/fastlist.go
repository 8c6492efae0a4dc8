package aws

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
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

// pageSink takes a listing's pages, one at a time.
type pageSink struct {
	// out holds the page's instances: each page has a slice of its own,
	// and List joins them once, at the end (appending page after page to
	// one slice copies the first pages again and again).
	out []fleet.Instance
	ok  bool // the last page was scanned; otherwise the SDK decoded it
	// body is the page buffer, reused from page to page: nothing the scan
	// returns points into it, and the SDK is done with a page it decoded
	// before the next one is asked for.
	body bytes.Buffer
	// pageSize is the most instances a page holds.
	pageSize int
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
	sink := m.sink
	sink.ok, sink.out = false, sink.out[:0] // an earlier attempt's scan is void
	resp, isHTTP := out.RawResponse.(*smithyhttp.Response)
	if err != nil || !isHTTP || resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return out, md, err
	}
	buf := &sink.body
	buf.Reset()
	if resp.ContentLength > 0 && resp.ContentLength < 64<<20 {
		buf.Grow(int(resp.ContentLength) + bytes.MinRead)
	}
	_, err = buf.ReadFrom(resp.Body)
	body := buf.Bytes()
	resp.Body.Close()
	if err != nil {
		return out, md, err // a transport error: retryable like any other
	}
	// Room for the page's instances: at most pageSize, and no instance
	// takes less than half a kilobyte of XML.
	sink.out = slices.Grow(sink.out, min(sink.pageSize, len(body)/512))
	instances, token, scanErr := scanInto(sink.out, body)
	if scanErr != nil {
		resp.Body = io.NopCloser(bytes.NewReader(body)) // the SDK decodes it
		return out, md, nil
	}
	sink.out, sink.ok = instances, true
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
//
// Each element is classified once, when it starts, from its parent's kind
// and its name (see child); its end then costs a switch on the kind, and
// elements no field lives in (most of an instance) cost no comparison at all.
func scanDescribeInstances(b []byte) (instances []fleet.Instance, nextToken string, err error) {
	return scanInto(nil, b)
}

// scanInto is scanDescribeInstances appending to dst (whose contents it
// leaves alone: on error it returns nil and dst stays as it was).
func scanInto(dst []fleet.Instance, b []byte) (instances []fleet.Instance, nextToken string, err error) {
	instances = dst
	st := scanState{interned: make(map[string]string, 64)}
	var (
		names    [16][]byte // element names from the root
		kinds    [16]kind   // and their kinds
		depth    int
		cur      fleet.Instance
		in       instanceText
		tagKey   string
		tagValue leaf
		textFrom int // where the current element's content starts
	)
	end := func(k kind, raw []byte) error {
		var err error
		switch k {
		case kNextToken:
			nextToken, err = text(raw)
		case kInstance:
			in.finish(&cur)
			instances = append(instances, cur)
		case kID:
			in.id, err = leafText(raw)
		case kType:
			cur.Type, err = st.textAt(slotType, raw)
		case kPrivateIP:
			in.private, err = leafText(raw)
		case kPublicIP:
			in.public, err = leafText(raw)
		case kLaunchTime:
			cur.LaunchedAt, err = st.time(raw)
		case kStateName:
			var s string
			s, err = st.textAt(slotState, raw)
			cur.State = fleet.State(s)
		case kZone:
			cur.Zone, err = st.textAt(slotZone, raw)
		case kTagKey:
			tagKey, err = st.textAt(slotTag+2*len(in.tags), raw)
		case kTagValue:
			if tagKey == fleet.TagLabel || strings.EqualFold(tagKey, fleet.TagLabel) {
				tagValue, err = leafText(raw) // unique per instance
			} else {
				var s string
				s, err = st.textAt(slotTag+2*len(in.tags)+1, raw)
				tagValue = leaf{s: s, decoded: true}
			}
		case kTag:
			in.tags = append(in.tags, tagText{key: tagKey, value: tagValue})
		}
		return err
	}
	i := 0
	for {
		// Tags mostly follow each other with nothing between.
		if i >= len(b) || b[i] != '<' {
			lt := bytes.IndexByte(b[i:], '<')
			if lt < 0 {
				if depth != 0 || len(bytes.TrimSpace(b[i:])) != 0 {
					return nil, "", fmt.Errorf("%w: truncated document", errUnsupported)
				}
				break
			}
			i += lt
		}
		rest := b[i:]
		if len(rest) < 2 {
			return nil, "", fmt.Errorf("%w: truncated document", errUnsupported)
		}
		switch rest[1] {
		case '?':
			end := bytes.Index(rest, []byte("?>"))
			if end < 0 || depth != 0 {
				return nil, "", fmt.Errorf("%w: processing instruction", errUnsupported)
			}
			i += end + 2
			continue
		case '!':
			// Comments, CDATA and doctypes: rare in EC2 output, left to the SDK.
			return nil, "", fmt.Errorf("%w: markup declaration", errUnsupported)
		case '/':
			if depth == 0 {
				return nil, "", fmt.Errorf("%w: bad end tag", errUnsupported)
			}
			open := names[depth-1]
			gt := len(open) + 2
			if len(rest) <= gt || rest[gt] != '>' || !bytes.Equal(rest[2:gt], open) {
				// Not </open> exactly: a prefix, other case or spaces.
				if gt = bytes.IndexByte(rest, '>'); gt < 0 {
					return nil, "", fmt.Errorf("%w: bad end tag", errUnsupported)
				}
				if !bytes.EqualFold(localName(bytes.TrimSpace(rest[2:gt])), open) {
					return nil, "", fmt.Errorf("%w: mismatched end tag", errUnsupported)
				}
			}
			if k := kinds[depth-1]; k != kOther {
				if err := end(k, b[textFrom:i]); err != nil {
					return nil, "", err
				}
			}
			depth--
			i += gt + 1
			textFrom = i
			continue
		}
		// A start tag, maybe empty (<x/>), maybe with attributes whose
		// quoted values may hold '>'.
		j, colon := 1, 0
		for {
			for j < len(rest) && !nameStop[rest[j]] {
				j++
			}
			if j < len(rest) && rest[j] == ':' {
				colon = j
				j++
				continue
			}
			break
		}
		name := rest[colon+1 : j]
		if len(name) == 0 {
			return nil, "", fmt.Errorf("%w: bad start tag", errUnsupported)
		}
		selfClosing := false
		if j < len(rest) && rest[j] == '>' {
			// The common case: no attributes.
		} else {
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
		}
		if depth == len(names) {
			return nil, "", fmt.Errorf("%w: too deep", errUnsupported)
		}
		k := kRoot
		if depth > 0 {
			k = kOther // below an element no field lives in
			if parent := kinds[depth-1]; parent != kOther {
				k = child(parent, name)
			}
		}
		switch k {
		case kInstance:
			cur = fleet.Instance{}
			in.reset()
		case kTag:
			tagKey, tagValue = "", leaf{}
		}
		names[depth], kinds[depth] = name, k
		depth++
		i += j + 1
		textFrom = i
		if selfClosing {
			if k != kOther {
				if err := end(k, nil); err != nil {
					return nil, "", err
				}
			}
			depth--
		}
	}
	return instances, nextToken, nil
}

// nameStop holds the bytes that end an element name or its prefix.
var nameStop = func() (t [256]bool) {
	for _, c := range []byte(" \t\n\r>/:") {
		t[c] = true
	}
	return t
}()

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// localName drops a namespace prefix.
func localName(n []byte) []byte {
	if k := bytes.IndexByte(n, ':'); k >= 0 {
		return n[k+1:]
	}
	return n
}

// kind is what an element of a DescribeInstances response is to the scanner.
type kind uint8

const (
	kOther        kind = iota // nothing read in it or below it
	kRoot                     // the response element, whatever its name
	kReservations             // reservationSet
	kReservation              // reservationSet>item
	kInstances                // ...>instancesSet
	kInstance                 // ...>instancesSet>item
	kID
	kType
	kPrivateIP
	kPublicIP
	kLaunchTime
	kState
	kStateName
	kPlacement
	kZone
	kTags
	kTag
	kTagKey
	kTagValue
	kNextToken
)

// child returns the kind of an element named name inside one of kind parent.
func child(parent kind, name []byte) kind {
	switch parent {
	case kRoot:
		switch {
		case nameIs(name, "reservationSet"):
			return kReservations
		case nameIs(name, "nextToken"):
			return kNextToken
		}
	case kReservations:
		if nameIs(name, "item") {
			return kReservation
		}
	case kReservation:
		if nameIs(name, "instancesSet") {
			return kInstances
		}
	case kInstances:
		if nameIs(name, "item") {
			return kInstance
		}
	case kInstance:
		switch len(name) {
		case len("instanceId"):
			if nameIs(name, "instanceId") {
				return kID
			}
			if nameIs(name, "launchTime") {
				return kLaunchTime
			}
		case len("instanceType"):
			if nameIs(name, "instanceType") {
				return kType
			}
		case len("privateIpAddress"):
			if nameIs(name, "privateIpAddress") {
				return kPrivateIP
			}
		case len("ipAddress"):
			if nameIs(name, "ipAddress") {
				return kPublicIP
			}
			if nameIs(name, "placement") {
				return kPlacement
			}
		case len("instanceState"):
			if nameIs(name, "instanceState") {
				return kState
			}
		case len("tagSet"):
			if nameIs(name, "tagSet") {
				return kTags
			}
		}
	case kState:
		if nameIs(name, "name") {
			return kStateName
		}
	case kPlacement:
		if nameIs(name, "availabilityZone") {
			return kZone
		}
	case kTags:
		if nameIs(name, "item") {
			return kTag
		}
	case kTag:
		switch {
		case nameIs(name, "key"):
			return kTagKey
		case nameIs(name, "value"):
			return kTagValue
		}
	}
	return kOther
}

// nameIs reports whether an element name is want, case-insensitively.
func nameIs(name []byte, want string) bool {
	return len(name) == len(want) && (string(name) == want || strings.EqualFold(string(name), want))
}

// scanState holds what one scan shares across instances.
type scanState struct {
	// interned keeps one copy of the strings that repeat across
	// instances (types, zones, states, tag keys and most tag values).
	interned map[string]string
	// last holds, per slot (a field, or the key or value of an instance's
	// n-th tag), the last text read there and its string: the next
	// instance mostly has the same, found without hashing.
	last [slotTag + 2*16]struct {
		raw []byte
		s   string
	}
	// lastTime is the last launch time parsed, as read and parsed.
	lastTime   []byte
	lastParsed time.Time
}

// Slots of scanState.last.
const (
	slotType = iota
	slotState
	slotZone
	slotTag // then a key and a value slot for each of the first 16 tags
)

// textAt is text, remembering the text read at slot.
func (st *scanState) textAt(slot int, raw []byte) (string, error) {
	if slot >= len(st.last) {
		return st.text(raw)
	}
	m := &st.last[slot]
	if m.raw != nil && bytes.Equal(m.raw, raw) {
		return m.s, nil
	}
	s, err := st.text(raw)
	if err == nil && raw != nil {
		m.raw, m.s = raw, s
	}
	return s, err
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

// time parses a launch time. Instances launched together share it, so the
// last one parsed is kept.
func (st *scanState) time(raw []byte) (time.Time, error) {
	if st.lastTime != nil && bytes.Equal(raw, st.lastTime) {
		return st.lastParsed, nil
	}
	s, err := text(raw)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	st.lastTime, st.lastParsed = raw, t
	return t, nil
}

// leaf is a leaf element's content: raw when it holds no entity, which
// then costs no allocation until its instance ends, else decoded.
type leaf struct {
	raw     []byte
	s       string
	decoded bool
}

// leafText checks a leaf's content as text does, decoding it only when it
// holds entities.
func leafText(raw []byte) (leaf, error) {
	if bytes.IndexByte(raw, '<') >= 0 {
		return leaf{}, fmt.Errorf("%w: mixed content", errUnsupported)
	}
	if bytes.IndexByte(raw, '&') < 0 {
		return leaf{raw: raw}, nil
	}
	s, err := text(raw)
	return leaf{s: s, decoded: true}, err
}

func (l leaf) len() int {
	if l.decoded {
		return len(l.s)
	}
	return len(l.raw)
}

// tagText is one tag of an instance being read.
type tagText struct {
	key   string
	value leaf
}

// instanceText holds what is unique to an instance (its id, addresses and
// label) until it ends. They are then copied into a shared buffer of
// strings (sb) that serves many instances, one allocation every 16 KiB
// where there would be one per field: an instance's strings keep at most
// that much alive.
type instanceText struct {
	id, private, public leaf
	tags                []tagText // reused from instance to instance
	sb                  strings.Builder
}

// stringChunk is the size of the buffers instances' strings are cut from.
const stringChunk = 16 << 10

func (in *instanceText) reset() {
	in.id, in.private, in.public = leaf{}, leaf{}, leaf{}
	in.tags = in.tags[:0]
}

// finish sets cur's id, address and tags.
func (in *instanceText) finish(cur *fleet.Instance) {
	addr := in.private
	if addr.len() == 0 {
		addr = in.public
	}
	n := len(in.id.raw) + len(addr.raw)
	for _, t := range in.tags {
		n += len(t.value.raw)
	}
	if in.sb.Cap()-in.sb.Len() < n {
		in.sb = strings.Builder{}
		in.sb.Grow(max(n, stringChunk))
	}
	// Each field is written once and sliced out of the builder's buffer,
	// which has room for them all: it is never moved, and a string of it
	// never changes.
	str := func(l leaf) string {
		if l.decoded || len(l.raw) == 0 {
			return l.s
		}
		from := in.sb.Len()
		in.sb.Write(l.raw)
		return in.sb.String()[from:]
	}
	cur.ID = str(in.id)
	cur.Address = str(addr)
	if len(in.tags) == 0 {
		return
	}
	cur.Tags = make(map[string]string, len(in.tags))
	for _, t := range in.tags {
		v := str(t.value)
		cur.Tags[t.key] = v
		switch t.key { // a key given twice: the last value, as in the map
		case fleet.TagFleet:
			cur.Fleet = v
		case fleet.TagRole:
			cur.Role = v
		case fleet.TagLabel:
			cur.Label = v
		}
	}
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
