module tunnelwall/tlsintls

go 1.21
