package l4

import "github.com/prometheus/client_golang/prometheus"

// The listeners' metrics, which the L7 listeners report too.
var (
	DescListenerActive = prometheus.NewDesc("meridian_forward_listener_active_connections",
		"Connections (UDP: flows) open on the listener.", []string{"listener", "protocol"}, nil)
	DescListenerConns = prometheus.NewDesc("meridian_forward_listener_connections_total",
		"Connections accepted (UDP: flows started) by the listener.", []string{"listener", "protocol"}, nil)
	DescListenerRejected = prometheus.NewDesc("meridian_forward_listener_rejected_total",
		"Connections (UDP: datagrams) turned away, by reason.", []string{"listener", "protocol", "reason"}, nil)
	DescListenerDatagrams = prometheus.NewDesc("meridian_forward_listener_datagrams_total",
		"UDP datagrams, from clients and to clients.", []string{"listener", "direction"}, nil)
)
