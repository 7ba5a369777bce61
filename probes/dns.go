package probes

// The DNS checker of issue 4 belongs in this file: a DNSChecker that sends
// one query to a nameserver (from an optional source address, over UDP
// with a TCP retry on truncation) and passes when the rcode and, if
// configured, an answer record match. Like TCPChecker it implements Checker
// and Equaler and measures RTT to the answer; the Scheduler and Hysteresis
// need nothing more to run it.
