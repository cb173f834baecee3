//! HTTPS serving: the rustls acceptor, HTTP/1.1 + HTTP/2, and the client
//! certificate of each connection handed to authentication. To be written.
