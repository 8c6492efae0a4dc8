package ec2test

import (
	"encoding/xml"
	"time"
)

// xmlns is the namespace EC2 puts on every response for the API version the
// SDK speaks.
const xmlns = "http://ec2.amazonaws.com/doc/2016-11-15/"

// apiVersion is the only Version the server accepts.
const apiVersion = "2016-11-15"

// State codes, as EC2 reports them in instanceState>code.
var stateCodes = map[string]int{
	"pending":       0,
	"running":       16,
	"shutting-down": 32,
	"terminated":    48,
	"stopping":      64,
	"stopped":       80,
}

type xmlErrorResponse struct {
	XMLName   xml.Name   `xml:"Response"`
	Errors    []xmlError `xml:"Errors>Error"`
	RequestID string     `xml:"RequestID"`
}

type xmlError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type xmlState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xmlGroup struct {
	GroupID string `xml:"groupId"`
}

type xmlPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
	Tenancy          string `xml:"tenancy"`
}

type xmlInstance struct {
	InstanceID       string          `xml:"instanceId"`
	ImageID          string          `xml:"imageId,omitempty"`
	State            xmlState        `xml:"instanceState"`
	PrivateDNSName   string          `xml:"privateDnsName"`
	KeyName          string          `xml:"keyName,omitempty"`
	AmiLaunchIndex   int             `xml:"amiLaunchIndex"`
	InstanceType     string          `xml:"instanceType"`
	LaunchTime       string          `xml:"launchTime"`
	Placement        xmlPlacement    `xml:"placement"`
	SubnetID         string          `xml:"subnetId,omitempty"`
	PrivateIPAddress string          `xml:"privateIpAddress,omitempty"`
	IPAddress        string          `xml:"ipAddress,omitempty"`
	Groups           []xmlGroup      `xml:"groupSet>item"`
	ClientToken      string          `xml:"clientToken,omitempty"`
	Tags             []xmlTag        `xml:"tagSet>item,omitempty"`
	Reason           string          `xml:"reason,omitempty"` // the state transition reason
	StateReason      *xmlStateReason `xml:"stateReason,omitempty"`
}

// xmlStateReason is why an instance last changed state.
type xmlStateReason struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type xmlReservation struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

type xmlRunInstancesResponse struct {
	XMLName       xml.Name      `xml:"RunInstancesResponse"`
	Xmlns         string        `xml:"xmlns,attr"`
	RequestID     string        `xml:"requestId"`
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

type xmlDescribeInstancesResponse struct {
	XMLName      xml.Name         `xml:"DescribeInstancesResponse"`
	Xmlns        string           `xml:"xmlns,attr"`
	RequestID    string           `xml:"requestId"`
	Reservations []xmlReservation `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

type xmlStateChange struct {
	InstanceID    string   `xml:"instanceId"`
	CurrentState  xmlState `xml:"currentState"`
	PreviousState xmlState `xml:"previousState"`
}

type xmlTerminateInstancesResponse struct {
	XMLName   xml.Name         `xml:"TerminateInstancesResponse"`
	Xmlns     string           `xml:"xmlns,attr"`
	RequestID string           `xml:"requestId"`
	Instances []xmlStateChange `xml:"instancesSet>item"`
}

type xmlStartInstancesResponse struct {
	XMLName   xml.Name         `xml:"StartInstancesResponse"`
	Xmlns     string           `xml:"xmlns,attr"`
	RequestID string           `xml:"requestId"`
	Instances []xmlStateChange `xml:"instancesSet>item"`
}

type xmlCreateTagsResponse struct {
	XMLName   xml.Name `xml:"CreateTagsResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	Return    bool     `xml:"return"`
}

type xmlGetConsoleOutputResponse struct {
	XMLName    xml.Name `xml:"GetConsoleOutputResponse"`
	Xmlns      string   `xml:"xmlns,attr"`
	RequestID  string   `xml:"requestId"`
	InstanceID string   `xml:"instanceId"`
	Timestamp  string   `xml:"timestamp"`
	Output     string   `xml:"output,omitempty"` // base64
}

// ec2Time formats a time as EC2 does in launchTime and timestamp.
func ec2Time(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
