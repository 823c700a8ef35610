package metrics

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/simgate/simgate/core/amf"
	"github.com/simgate/simgate/core/smf"
	"github.com/simgate/simgate/gtp/dn"
	"github.com/simgate/simgate/gtp/gtpu"
	"github.com/simgate/simgate/gtp/pfcp"
	"github.com/simgate/simgate/gtp/upf"
	"github.com/simgate/simgate/sim/device"
	"github.com/simgate/simgate/sim/gnb"
)

// statsCollector is a pull-style collector: on each scrape, collect reads a
// component's Stats snapshot and sends const metrics of its descriptors.
type statsCollector struct {
	descs   []*prometheus.Desc
	collect func(ch chan<- prometheus.Metric)
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// family builds the descriptors of one statsCollector.
type family struct {
	sub    string            // subsystem: amf, gtpu, ...
	consts prometheus.Labels // e.g. conn="n3"
	descs  []*prometheus.Desc
}

func (f *family) desc(name, help string, labels ...string) *prometheus.Desc {
	d := prometheus.NewDesc(prometheus.BuildFQName(namespace, f.sub, name), help, labels, f.consts)
	f.descs = append(f.descs, d)
	return d
}

func (r *Registry) add(what string, f *family, collect func(ch chan<- prometheus.Metric)) error {
	if err := r.Register(&statsCollector{descs: f.descs, collect: collect}); err != nil {
		return fmt.Errorf("metrics: %s: %w", what, err)
	}
	return nil
}

// nameLabels are the constant labels of a named component; the name must
// tell apart the components of one kind in a process (e.g. "n3", "n4").
func nameLabels(key, name string) (prometheus.Labels, error) {
	if name == "" {
		return nil, fmt.Errorf("metrics: %s: empty name", key)
	}
	if b := boundLabel(name); b != name {
		return nil, fmt.Errorf("metrics: %s %q: want valid UTF-8 of at most %d bytes", key, name, maxLabelLen)
	}
	return prometheus.Labels{key: name}, nil
}

func errNil(what string) error { return fmt.Errorf("metrics: %s: nil component", what) }

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, lv ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, lv ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
}

// AddAMF exports the AMF's gauges (amf.Stats): gNBs set up, UE contexts,
// registered UEs and resolvable 5G-GUTIs.
func (r *Registry) AddAMF(a *amf.AMF) error {
	if a == nil {
		return errNil("amf")
	}
	f := &family{sub: "amf"}
	gnbs := f.desc("gnbs", "gNBs with NG Setup done.")
	ctxs := f.desc("ue_contexts", "UE contexts with a signalling connection.")
	regd := f.desc("registered_ues", "Registered UEs (attached).")
	gutis := f.desc("known_gutis", "5G-GUTIs the AMF can resolve.")
	return r.add("amf", f, func(ch chan<- prometheus.Metric) {
		s := a.Stats()
		gauge(ch, gnbs, float64(s.GNBs))
		gauge(ch, ctxs, float64(s.Contexts))
		gauge(ch, regd, float64(s.Registered))
		gauge(ch, gutis, float64(s.KnownGUTIs))
	})
}

// AddSMF exports the number of UEs with PDU session state and, for each
// pool given (smf.SMF.Pool of a configured DNN), its size and addresses in
// use; a PDU session holds exactly one IPv4 address, so the addresses in
// use are the DNN's PDU sessions. Pools are labelled by prefix.
func (r *Registry) AddSMF(s *smf.SMF, pools ...*smf.Pool) error {
	if s == nil {
		return errNil("smf")
	}
	f := &family{sub: "smf"}
	ues := f.desc("ues", "UEs the SMF holds PDU session state for.")
	inUse := f.desc("pdu_sessions", "PDU sessions: addresses in use in the UE address pool.", "pool")
	size := f.desc("pool_addresses", "Addresses of the UE address pool.", "pool")
	seen := make(map[string]bool, len(pools))
	for _, p := range pools {
		if p == nil {
			return fmt.Errorf("metrics: smf: nil pool")
		}
		k := p.Prefix().String()
		if seen[k] {
			return fmt.Errorf("metrics: smf: pool %s given twice", k)
		}
		seen[k] = true
	}
	return r.add("smf", f, func(ch chan<- prometheus.Metric) {
		gauge(ch, ues, float64(s.UEs()))
		for _, p := range pools {
			k := p.Prefix().String()
			gauge(ch, inUse, float64(p.InUse()), k)
			gauge(ch, size, float64(p.Size()), k)
		}
	})
}

// AddPFCP exports a PFCP node's message counters (pfcp.Stats) with the
// constant label node=name.
func (r *Registry) AddPFCP(name string, n *pfcp.Node) error {
	if n == nil {
		return errNil("pfcp")
	}
	cl, err := nameLabels("node", name)
	if err != nil {
		return err
	}
	f := &family{sub: "pfcp", consts: cl}
	sent := f.desc("requests_sent_total", "PFCP requests sent (first transmissions).")
	retx := f.desc("retransmissions_total", "PFCP requests sent again after T1 (TS 29.244 6.4).")
	tmo := f.desc("timeouts_total", "PFCP requests given up after N1 retransmissions.")
	resp := f.desc("responses_received_total", "PFCP responses matched to an outstanding request.")
	unm := f.desc("unmatched_responses_total", "PFCP responses late, duplicate or unsolicited.")
	rcvd := f.desc("requests_received_total", "PFCP requests handled (duplicates excluded).")
	dup := f.desc("duplicate_requests_total", "PFCP request retransmissions answered from the cache.")
	bad := f.desc("dropped_messages_total", "PFCP datagrams dropped, by reason.", "reason")
	return r.add("pfcp "+name, f, func(ch chan<- prometheus.Metric) {
		s := n.Stats()
		counter(ch, sent, s.RequestsSent)
		counter(ch, retx, s.Retransmissions)
		counter(ch, tmo, s.Timeouts)
		counter(ch, resp, s.ResponsesReceived)
		counter(ch, unm, s.UnmatchedResponses)
		counter(ch, rcvd, s.RequestsReceived)
		counter(ch, dup, s.DuplicateRequests)
		counter(ch, bad, s.Malformed, "malformed")
		counter(ch, bad, s.UnknownMessages, "unknown_message_type")
		counter(ch, bad, s.VersionNotSupported, "version_not_supported")
	})
}

// gtpuErrorNames are short label values of gtpu's decode errors.
var gtpuErrorNames = map[gtpu.Error]string{
	gtpu.ErrShort:            "short",
	gtpu.ErrVersion:          "version",
	gtpu.ErrProtocolType:     "protocol_type",
	gtpu.ErrLength:           "length",
	gtpu.ErrExtLength:        "ext_length",
	gtpu.ErrExtTruncated:     "ext_truncated",
	gtpu.ErrUnknownExtension: "unknown_extension",
	gtpu.ErrPDUSession:       "pdu_session_container",
	gtpu.ErrIE:               "ie",
	gtpu.ErrMissingIE:        "missing_ie",
	gtpu.ErrTooBig:           "too_big",
	gtpu.ErrHeadroom:         "headroom",
	gtpu.ErrField:            "field",
}

func gtpuErrorName(e gtpu.Error) string {
	if n, ok := gtpuErrorNames[e]; ok {
		return n
	}
	return "error_" + strconv.Itoa(int(e))
}

// gtpuDescs are the descriptors of a gtpu.Stats.
type gtpuDescs struct {
	pkts, bytes, echo, errInd, extNotif, limited, drops, malformed *prometheus.Desc
}

func newGTPUDescs(cl prometheus.Labels) (*family, *gtpuDescs) {
	f := &family{sub: "gtpu", consts: cl}
	return f, &gtpuDescs{
		pkts:      f.desc("packets_total", "GTP-U datagrams received (rx) and sent (tx).", "direction"),
		bytes:     f.desc("bytes_total", "GTP-U datagram bytes received (rx) and sent (tx).", "direction"),
		echo:      f.desc("echo_requests_total", "GTP-U Echo Requests received and answered (TS 29.281 7.2.1)."),
		errInd:    f.desc("error_indications_sent_total", "GTP-U Error Indications sent for unknown TEIDs (TS 29.281 7.3.1)."),
		extNotif:  f.desc("extension_notifications_sent_total", "GTP-U Supported Extension Headers Notifications sent (TS 29.281 7.2.3)."),
		limited:   f.desc("rate_limited_total", "Error Indications and notifications not sent because of the rate limit."),
		drops:     f.desc("drops_total", "GTP-U datagrams dropped, by reason.", "reason"),
		malformed: f.desc("malformed_total", "GTP-U datagrams dropped as malformed, by decode error.", "error"),
	}
}

func (d *gtpuDescs) collect(ch chan<- prometheus.Metric, s *gtpu.Stats) {
	counter(ch, d.pkts, s.RxPackets, "rx")
	counter(ch, d.pkts, s.TxPackets, "tx")
	counter(ch, d.bytes, s.RxBytes, "rx")
	counter(ch, d.bytes, s.TxBytes, "tx")
	counter(ch, d.echo, s.EchoRequests)
	counter(ch, d.errInd, s.ErrorIndications)
	counter(ch, d.extNotif, s.ExtNotifications)
	counter(ch, d.limited, s.RateLimited)
	for i, v := range s.Drops {
		counter(ch, d.drops, v, gtpu.DropReason(i).String())
	}
	for i := 1; i < len(s.Malformed); i++ { // Error 0 is not an error
		counter(ch, d.malformed, s.Malformed[i], gtpuErrorName(gtpu.Error(i)))
	}
}

// AddGTPU exports a GTP-U socket's counters (gtpu.Stats): packets and bytes
// by direction, drops by reason, malformed datagrams by decode error, with
// the constant label conn=name.
func (r *Registry) AddGTPU(name string, c *gtpu.Conn) error {
	if c == nil {
		return errNil("gtpu")
	}
	cl, err := nameLabels("conn", name)
	if err != nil {
		return err
	}
	f, d := newGTPUDescs(cl)
	return r.add("gtpu "+name, f, func(ch chan<- prometheus.Metric) {
		s := c.Stats()
		d.collect(ch, &s)
	})
}

// AddUPF exports the UPF's PFCP sessions (its session table).
func (r *Registry) AddUPF(u *upf.UPF) error {
	if u == nil {
		return errNil("upf")
	}
	f := &family{sub: "upf"}
	sess := f.desc("sessions", "PFCP sessions (PDU sessions) in the UPF's session table.")
	return r.add("upf", f, func(ch chan<- prometheus.Metric) {
		gauge(ch, sess, float64(u.Sessions().Len()))
	})
}

// AddUPFDataPath exports the UPF data path's counters (upf.DataPathStats):
// inner packets and bytes by direction, buffered downlink packets, End
// Markers, Error Indications received and drops by reason.
func (r *Registry) AddUPFDataPath(d *upf.DataPath) error {
	if d == nil {
		return errNil("upf data path")
	}
	f := &family{sub: "upf"}
	pkts := f.desc("packets_total", "Inner packets carried: uplink to the data network, downlink to gNBs.", "direction")
	bytes := f.desc("bytes_total", "Inner packet bytes carried, by direction.", "direction")
	buf := f.desc("buffered_packets_total", "Downlink packets held until the gNB F-TEID was known (TS 29.244 5.2.1 BUFF).")
	em := f.desc("end_markers_sent_total", "End Markers sent on a replaced downlink tunnel (TS 29.281 7.3.2).")
	ei := f.desc("error_indications_received_total", "Error Indications received from gNBs (TS 29.281 7.3.1).")
	drops := f.desc("drops_total", "Packets the data path dropped, by reason.", "reason")
	return r.add("upf data path", f, func(ch chan<- prometheus.Metric) {
		s := d.Stats()
		counter(ch, pkts, s.UplinkPackets, "uplink")
		counter(ch, pkts, s.DownlinkPackets, "downlink")
		counter(ch, bytes, s.UplinkBytes, "uplink")
		counter(ch, bytes, s.DownlinkBytes, "downlink")
		counter(ch, buf, s.Buffered)
		counter(ch, em, s.EndMarkers)
		counter(ch, ei, s.ErrorIndications)
		for i, v := range s.Drops {
			counter(ch, drops, v, upf.DropReason(i).String())
		}
	})
}

// AddDN exports the data network's counters (dn.Stats): NAT flows and
// bytes, refusals, DNS queries, malformed packets.
func (r *Registry) AddDN(d *dn.DN) error {
	if d == nil {
		return errNil("dn")
	}
	f := &family{sub: "dn"}
	flows := f.desc("nat_flows_total", "NAT flows opened, by transport.", "transport")
	active := f.desc("nat_flows_active", "NAT flows open now, by transport.", "transport")
	bytes := f.desc("nat_bytes_total", "NAT payload bytes: uplink from devices to hosts, downlink back.", "direction")
	drops := f.desc("drops_total", "Flows and packets the data network refused or lost, by reason.", "reason")
	dns := f.desc("dns_queries_total", "DNS queries answered, by how (local or forwarded to the host resolver).", "resolver")
	return r.add("dn", f, func(ch chan<- prometheus.Metric) {
		s := d.Stats()
		counter(ch, flows, s.TCPFlows, "tcp")
		counter(ch, flows, s.UDPFlows, "udp")
		gauge(ch, active, float64(s.TCPActive), "tcp")
		gauge(ch, active, float64(s.UDPActive), "udp")
		counter(ch, bytes, s.UplinkBytes, "uplink")
		counter(ch, bytes, s.DownlinkBytes, "downlink")
		counter(ch, drops, s.Refused, "refused")
		counter(ch, drops, s.DialErrors, "dial_error")
		counter(ch, drops, s.PingsDropped, "foreign_ping")
		counter(ch, drops, s.Malformed, "malformed")
		counter(ch, drops, s.NoDownlink, "no_downlink")
		local := s.DNSQueries - min(s.DNSForwarded, s.DNSQueries)
		counter(ch, dns, local, "local")
		counter(ch, dns, s.DNSForwarded, "forwarded")
	})
}

// AddDevices exports the devices' shared IP stack: UEs on it and packets,
// bytes and drops through its NIC (device.Stats).
func (r *Registry) AddDevices(s *device.Stack) error {
	if s == nil {
		return errNil("devices")
	}
	f := &family{sub: "devices"}
	ues := f.desc("ues", "UE addresses on the devices' IP stack.")
	pkts := f.desc("packets_total", "Packets through the devices' NIC: uplink from UEs, downlink to them.", "direction")
	bytes := f.desc("bytes_total", "Packet bytes through the devices' NIC, by direction.", "direction")
	drops := f.desc("drops_total", "Packets dropped for want of a UE, by direction.", "direction")
	return r.add("devices", f, func(ch chan<- prometheus.Metric) {
		st := s.Stats()
		gauge(ch, ues, float64(s.UEs()))
		counter(ch, pkts, st.Uplink, "uplink")
		counter(ch, pkts, st.Downlink, "downlink")
		counter(ch, bytes, st.UplinkBytes, "uplink")
		counter(ch, bytes, st.DownlinkBytes, "downlink")
		counter(ch, drops, st.UplinkDropped, "uplink")
		counter(ch, drops, st.DownlinkDropped, "downlink")
	})
}

// AddGNBN3 exports the gNBs' N3 endpoint (gnb.N3Stats): tunnels, inner
// packets and drops by direction, Error Indications and End Markers
// received, and its GTP-U socket as conn="gnb_n3".
func (r *Registry) AddGNBN3(n *gnb.N3) error {
	if n == nil {
		return errNil("gnb n3")
	}
	f := &family{sub: "gnb_n3"}
	tun := f.desc("tunnels", "PDU sessions with an N3 tunnel at the gNBs.")
	pkts := f.desc("packets_total", "Inner packets: uplink sent as G-PDUs, downlink handed to the UEs.", "direction")
	drops := f.desc("drops_total", "Inner packets dropped, by direction.", "direction")
	ei := f.desc("error_indications_received_total", "Error Indications received from UPFs (TS 29.281 7.3.1).")
	em := f.desc("end_markers_received_total", "End Markers received (TS 29.281 7.3.2).")
	gf, gd := newGTPUDescs(prometheus.Labels{"conn": "gnb_n3"})
	f.descs = append(f.descs, gf.descs...)
	return r.add("gnb n3", f, func(ch chan<- prometheus.Metric) {
		s := n.Stats()
		gauge(ch, tun, float64(s.Tunnels))
		counter(ch, pkts, s.Uplink, "uplink")
		counter(ch, pkts, s.Downlink, "downlink")
		counter(ch, drops, s.UplinkDropped, "uplink")
		counter(ch, drops, s.DownlinkDropped, "downlink")
		counter(ch, ei, s.ErrorIndications)
		counter(ch, em, s.EndMarkers)
		gd.collect(ch, &s.GTPU)
	})
}
