"""The outside world's services that run on topology nodes: a web server
and a DNS server (``python -m tunnelwall.services.webserver`` / ``dnsserver``)."""
