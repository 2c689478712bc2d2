//! One physical replication connection (`replication=true`), spoken
//! natively with postgres-protocol's message framing and authentication:
//! the SSL request as libpq's `sslmode` says, the start-up, cleartext,
//! md5 or SCRAM-SHA-256 authentication, then simple-query commands.
//!
//! Every wait is bounded: the whole login by the connect timeout, each
//! later request by the [`Watchdog`]'s answer limit.

use super::error::{AuthMethod, Origin, ReplError, ServerError, Stage};
use crate::pg::tls;
use crate::pg::tls::SslMode;
use crate::pg::transport::{self, Endpoint, Stream, Watchdog};
use crate::secret::Secret;
use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{
    ChannelBinding, SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramSha256,
};
use postgres_protocol::message::backend::{ErrorResponseBody, Message};
use postgres_protocol::message::frontend;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_postgres::config::ChannelBinding as BindingMode;

/// How much a read asks the socket for at a time.
const READ_CHUNK: usize = 64 * 1024;

/// A byte stream, plain or encrypted.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Who logs in, and how.
pub struct Login<'a> {
    pub user: &'a str,
    /// A logical replication connection to this database
    /// (`replication=database`), or a physical one (None).
    pub database: Option<&'a str>,
    pub application_name: Option<&'a str>,
    /// The `options` keyword: command-line options for the server.
    pub options: Option<&'a str>,
    pub ssl_mode: SslMode,
    /// The TLS configuration (None for sslmode=disable).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The name the certificate must hold: `host=`, also with `hostaddr=`.
    pub tls_name: &'a str,
    /// libpq's `channel_binding`: SCRAM-SHA-256-PLUS over TLS when the
    /// server offers it (prefer), never (disable), or nothing else (require).
    pub channel_binding: BindingMode,
    /// Sent only when the server asks for one.
    pub password: Option<Secret>,
    /// For a local socket: the OS user to connect as (peer authentication).
    pub os_user: Option<(u32, u32)>,
    /// Bounds the connect and the whole login.
    pub connect_timeout: Duration,
    /// Bounds each request after the login.
    pub answer_limit: Duration,
}

/// A command's answer, in the text format of the simple-query protocol.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<Vec<u8>>>>,
}

/// WAL bytes a stream brought after its first message, and over how long.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streamed {
    pub bytes: u64,
    pub over: Duration,
}

/// A logged-in replication connection.
pub struct Connection {
    io: Box<dyn Io>,
    buf: BytesMut,
    origin: Origin,
    answer_limit: Duration,
}

impl Connection {
    /// Connect to `endpoint` and log in, as libpq's sslmode says: with
    /// `allow`, plain first and TLS when the server refused that; with
    /// `prefer`, TLS first and plain when the handshake failed; the
    /// others once. Never TLS over a local socket (nor in libpq).
    pub async fn open(endpoint: &Endpoint, login: &Login<'_>) -> Result<Connection, ReplError> {
        let mode = match endpoint {
            Endpoint::Unix(_) => SslMode::Disable,
            Endpoint::Tcp(..) => login.ssl_mode,
        };
        let once = |tls| Connection::open_once(endpoint, login, tls);
        match mode {
            SslMode::Disable => once(Tls::No).await,
            SslMode::Allow => match once(Tls::No).await {
                Err(ReplError::Server { .. }) => once(Tls::Required).await,
                other => other,
            },
            SslMode::Prefer => match once(Tls::Wanted).await {
                Err(ReplError::Tls(_)) => once(Tls::No).await,
                other => other,
            },
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => once(Tls::Required).await,
        }
    }

    async fn open_once(
        endpoint: &Endpoint,
        login: &Login<'_>,
        tls: Tls,
    ) -> Result<Connection, ReplError> {
        // Reaching the server has its own bound (a host that drops our
        // packets is unreachable); the login after it, another (a server
        // that took the connection and says nothing has stopped answering).
        let stream = transport::open_as(endpoint, login.connect_timeout, login.os_user)
            .await
            .map_err(|cause| ReplError::Unreachable {
                endpoint: describe(endpoint),
                cause,
            })?;
        let login_fut = async {
            let origin = match &stream {
                Stream::Tcp(s) => Origin::Tcp(s.local_addr().map_err(ReplError::Io)?.ip()),
                Stream::Unix(_) => Origin::Local,
            };
            let mut stream = Watchdog::new(stream, login.answer_limit);
            let mut end_point = None;
            let io: Box<dyn Io> = match (&login.tls, tls) {
                (Some(config), Tls::Wanted | Tls::Required) => {
                    match negotiate_tls(&mut stream, login.answer_limit).await? {
                        true => {
                            let s = handshake(stream, config, login).await?;
                            end_point = s
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .and_then(|c| tls::server_end_point(c));
                            Box::new(s)
                        }
                        false if tls == Tls::Required => return Err(ReplError::TlsRequired),
                        false => Box::new(stream),
                    }
                }
                _ => Box::new(stream),
            };
            let mut conn = Connection {
                io,
                buf: BytesMut::with_capacity(8192),
                origin,
                answer_limit: login.answer_limit,
            };
            conn.startup(login, end_point).await?;
            Ok(conn)
        };
        tokio::time::timeout(login.connect_timeout, login_fut)
            .await
            .map_err(|_| ReplError::NoAnswer {
                limit: login.connect_timeout,
            })?
    }

    async fn startup(
        &mut self,
        login: &Login<'_>,
        end_point: Option<Vec<u8>>,
    ) -> Result<(), ReplError> {
        let mut params = vec![("user", login.user)];
        match login.database {
            Some(db) => {
                params.push(("replication", "database"));
                params.push(("database", db));
            }
            None => params.push(("replication", "true")),
        }
        if let Some(a) = login.application_name {
            params.push(("application_name", a));
        }
        if let Some(o) = login.options {
            params.push(("options", o));
        }
        let mut out = BytesMut::new();
        frontend::startup_message(params, &mut out).map_err(ReplError::Io)?;
        self.send(&out).await?;
        let mut auth = Auth {
            login,
            stage: Stage::BeforeAuth,
            scram: None,
            end_point,
            bound: false,
        };
        loop {
            let message = match auth.answer(self.next().await?)? {
                Answer::Reply(out) => {
                    if !out.is_empty() {
                        self.send(&out).await?;
                    }
                    continue;
                }
                Answer::NotAuthentication(other) => other,
            };
            match message {
                Message::ErrorResponse(body) => {
                    return Err(ReplError::Server {
                        error: Box::new(server_error(&body)?),
                        stage: auth.stage,
                        origin: self.origin,
                    });
                }
                Message::ReadyForQuery(_) if auth.stage == Stage::AfterAuth => {
                    // libpq 13+: a server that let us in without SCRAM's
                    // channel binding (trust, peer, cert) fails
                    // channel_binding=require all the same.
                    if login.channel_binding == BindingMode::Require && !auth.bound {
                        return Err(binding_refused(
                            "channel binding required, but server authenticated client without channel binding",
                        ));
                    }
                    return Ok(());
                }
                Message::ParameterStatus(_)
                | Message::BackendKeyData(_)
                | Message::NoticeResponse(_) => {}
                _ => return Err(unexpected("a message during the login")),
            }
        }
    }

    /// Run one command with the simple-query protocol.
    pub async fn simple_query(&mut self, command: &str) -> Result<Rows, ReplError> {
        let mut answers = self.pipelined(&[command]).await?;
        answers.pop().expect("one answer per command")
    }

    /// Send `commands` in one write and read their answers in order: one
    /// round trip for all of them instead of one each (what a preflight
    /// across a 40 ms link feels). Each is its own simple query, so one
    /// that fails does not stop the others (the outer error is the
    /// connection's, the inner ones the commands').
    pub async fn pipelined(
        &mut self,
        commands: &[&str],
    ) -> Result<Vec<Result<Rows, ReplError>>, ReplError> {
        let mut out = BytesMut::new();
        for command in commands {
            frontend::query(command, &mut out).map_err(ReplError::Io)?;
        }
        self.send(&out).await?;
        let mut answers = Vec::with_capacity(commands.len());
        for _ in commands {
            answers.push(self.answer_to_query().await?);
        }
        Ok(answers)
    }

    /// One simple query's answer, up to its ReadyForQuery.
    async fn answer_to_query(&mut self) -> Result<Result<Rows, ReplError>, ReplError> {
        let mut rows = Rows::default();
        let mut failed = None;
        loop {
            match self.next().await? {
                Message::RowDescription(body) => {
                    rows.columns = body
                        .fields()
                        .map(|f| Ok(f.name().to_string()))
                        .collect()
                        .map_err(|e: io::Error| ReplError::Protocol(e.to_string()))?;
                }
                Message::DataRow(body) => {
                    let data = body.buffer();
                    let row = body
                        .ranges()
                        .map(|r| Ok(r.map(|r| data[r].to_vec())))
                        .collect()
                        .map_err(|e: io::Error| ReplError::Protocol(e.to_string()))?;
                    rows.rows.push(row);
                }
                Message::ErrorResponse(body) => failed = Some(server_error(&body)?),
                Message::ReadyForQuery(_) => {
                    return Ok(match failed {
                        None => Ok(rows),
                        Some(error) => Err(ReplError::Server {
                            error: Box::new(error),
                            stage: Stage::Command,
                            origin: self.origin,
                        }),
                    });
                }
                Message::CommandComplete(_)
                | Message::EmptyQueryResponse
                | Message::NoticeResponse(_)
                | Message::ParameterStatus(_) => {}
                _ => return Err(unexpected("a message in answer to a command")),
            }
        }
    }

    /// Start a stream (a START_REPLICATION command) and count the WAL
    /// bytes that arrive after its first message, until `want` of them or
    /// `limit` after that first message; the connection is then only good
    /// for [`Connection::close`] (which the walsender takes in the stream).
    pub async fn measure_stream(
        &mut self,
        command: &str,
        want: u64,
        limit: Duration,
    ) -> Result<Streamed, ReplError> {
        let mut out = BytesMut::new();
        frontend::query(command, &mut out).map_err(ReplError::Io)?;
        self.send(&out).await?;
        self.copy_both().await?;
        let mut first: Option<std::time::Instant> = None;
        let mut bytes = 0;
        while bytes < want {
            let wait = first.map_or(self.answer_limit, |t| limit.saturating_sub(t.elapsed()));
            let Ok(m) = tokio::time::timeout(wait, self.next()).await else {
                break;
            };
            match m? {
                // XLogData: 'w', start, end, send time (25 bytes), then WAL.
                Message::CopyData(body) if body.data().first() == Some(&b'w') => {
                    let n = body.data().len().saturating_sub(25) as u64;
                    match first {
                        None => first = Some(std::time::Instant::now()),
                        Some(_) => bytes += n,
                    }
                }
                Message::ErrorResponse(body) => {
                    return Err(ReplError::Server {
                        error: Box::new(server_error(&body)?),
                        stage: Stage::Command,
                        origin: self.origin,
                    });
                }
                Message::CopyDone | Message::CommandComplete(_) => break,
                _ => {}
            }
        }
        Ok(Streamed {
            bytes,
            over: first.map(|t| t.elapsed()).unwrap_or_default(),
        })
    }

    /// Wait for CopyBothResponse ('W'), which postgres-protocol does not
    /// parse: it is taken off the buffer here.
    async fn copy_both(&mut self) -> Result<(), ReplError> {
        let mut failed = None;
        loop {
            if self.buf.len() < 5 {
                self.fill().await?;
                continue;
            }
            if self.buf[0] == b'W' {
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
                if self.buf.len() > len as usize {
                    let _ = self.buf.split_to(1 + len as usize);
                    return Ok(());
                }
                self.fill().await?;
                continue;
            }
            match self.next().await? {
                Message::ErrorResponse(body) => failed = Some(server_error(&body)?),
                Message::ReadyForQuery(_) => {
                    return Err(match failed {
                        Some(error) => ReplError::Server {
                            error: Box::new(error),
                            stage: Stage::Command,
                            origin: self.origin,
                        },
                        None => unexpected("an answer without a stream"),
                    });
                }
                Message::NoticeResponse(_) | Message::ParameterStatus(_) => {}
                _ => return Err(unexpected("a message in answer to START_REPLICATION")),
            }
        }
    }

    /// Say goodbye (Terminate), so the server logs no "unexpected EOF".
    pub async fn close(mut self) {
        let mut out = BytesMut::new();
        frontend::terminate(&mut out);
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = self.io.write_all(&out).await;
            let _ = self.io.shutdown().await;
        })
        .await;
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), ReplError> {
        let limit = self.answer_limit;
        self.io
            .write_all(bytes)
            .await
            .map_err(|e| io_error(e, limit))?;
        self.io.flush().await.map_err(|e| io_error(e, limit))
    }

    async fn next(&mut self) -> Result<Message, ReplError> {
        loop {
            if let Some(m) =
                Message::parse(&mut self.buf).map_err(|e| ReplError::Protocol(e.to_string()))?
            {
                return Ok(m);
            }
            self.fill().await?;
        }
    }

    /// Read what the server sent next into the buffer.
    async fn fill(&mut self) -> Result<(), ReplError> {
        // Room for a whole socket's worth: a full BytesMut offers
        // `read_buf` only 64 bytes, one syscall per 64 bytes of a stream.
        self.buf.reserve(READ_CHUNK);
        let n = self
            .io
            .read_buf(&mut self.buf)
            .await
            .map_err(|e| io_error(e, self.answer_limit))?;
        if n == 0 {
            return Err(ReplError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )));
        }
        Ok(())
    }
}

enum Answer {
    /// Bytes to send (none when the message needs no reply).
    Reply(BytesMut),
    NotAuthentication(Message),
}

/// The authentication exchange: how far it got (for classifying a
/// refusal), and the SCRAM state between the server's messages.
struct Auth<'l, 'a> {
    login: &'l Login<'a>,
    stage: Stage,
    scram: Option<ScramSha256>,
    /// The server certificate's `tls-server-end-point` hash (over TLS).
    end_point: Option<Vec<u8>>,
    /// Whether SCRAM-SHA-256-PLUS was used.
    bound: bool,
}

impl Auth<'_, '_> {
    /// Our answer to an authentication message, or the message back when
    /// it is no part of authentication.
    fn answer(&mut self, m: Message) -> Result<Answer, ReplError> {
        let mut out = BytesMut::new();
        match m {
            Message::AuthenticationOk => self.stage = Stage::AfterAuth,
            Message::AuthenticationCleartextPassword => {
                self.stage = Stage::Auth(AuthMethod::Cleartext);
                self.password_without_binding()?;
                let pw = self.password()?;
                frontend::password_message(pw.expose().as_bytes(), &mut out)
                    .map_err(ReplError::Io)?;
            }
            Message::AuthenticationMd5Password(body) => {
                self.stage = Stage::Auth(AuthMethod::Md5);
                self.password_without_binding()?;
                let pw = self.password()?;
                let user = self.login.user.as_bytes();
                let hash = md5_hash(user, pw.expose().as_bytes(), body.salt());
                frontend::password_message(hash.as_bytes(), &mut out).map_err(ReplError::Io)?;
            }
            Message::AuthenticationSasl(body) => {
                let offered: Vec<String> =
                    body.mechanisms()
                        .map(|m| Ok(m.to_string()))
                        .collect()
                        .map_err(|e: io::Error| ReplError::Protocol(e.to_string()))?;
                if !offered.iter().any(|m| m == SCRAM_SHA_256) {
                    return Err(ReplError::AuthMethodUnsupported(offered.join(", ")));
                }
                self.stage = Stage::Auth(AuthMethod::ScramSha256);
                self.scram_start(&offered, &mut out)?;
            }
            Message::AuthenticationSaslContinue(body) => {
                let s = self
                    .scram
                    .as_mut()
                    .ok_or_else(|| unexpected("SASL continue"))?;
                s.update(body.data())
                    .map_err(|e| ReplError::Protocol(format!("SCRAM: {e}")))?;
                frontend::sasl_response(s.message(), &mut out).map_err(ReplError::Io)?;
            }
            Message::AuthenticationSaslFinal(body) => {
                let s = self
                    .scram
                    .as_mut()
                    .ok_or_else(|| unexpected("SASL final"))?;
                s.finish(body.data()).map_err(|e| {
                    ReplError::Protocol(format!("the server's SCRAM signature: {e}"))
                })?;
            }
            Message::AuthenticationGss
            | Message::AuthenticationGssContinue(_)
            | Message::AuthenticationSspi => {
                return Err(ReplError::AuthMethodUnsupported("GSSAPI/SSPI".into()));
            }
            Message::AuthenticationKerberosV5 => {
                return Err(ReplError::AuthMethodUnsupported("Kerberos V5".into()));
            }
            Message::AuthenticationScmCredential => {
                return Err(ReplError::AuthMethodUnsupported("SCM credential".into()));
            }
            other => return Ok(Answer::NotAuthentication(other)),
        }
        Ok(Answer::Reply(out))
    }

    /// The first SCRAM message: SCRAM-SHA-256-PLUS bound to this TLS
    /// session when the server offers it and channel_binding allows.
    fn scram_start(&mut self, offered: &[String], out: &mut BytesMut) -> Result<(), ReplError> {
        let pw = self.password()?;
        let plus = offered.iter().any(|m| m == SCRAM_SHA_256_PLUS);
        let (mechanism, binding) = match (&self.end_point, self.login.channel_binding) {
            (Some(hash), BindingMode::Prefer | BindingMode::Require) if plus => {
                self.bound = true;
                (
                    SCRAM_SHA_256_PLUS,
                    ChannelBinding::tls_server_end_point(hash.clone()),
                )
            }
            (_, BindingMode::Require) => {
                return Err(binding_refused(
                    "channel binding is required, but server did not offer an authentication method that supports channel binding",
                ));
            }
            // No channel binding, said as "n" (the client does not
            // support it): "y" would tell a server that offers
            // SCRAM-SHA-256-PLUS over TLS that it sees a downgrade.
            _ => (SCRAM_SHA_256, ChannelBinding::unsupported()),
        };
        let s = ScramSha256::new(pw.expose().as_bytes(), binding);
        frontend::sasl_initial_response(mechanism, s.message(), out).map_err(ReplError::Io)?;
        self.scram = Some(s);
        Ok(())
    }

    /// libpq 13+ sends no password with channel_binding=require unless
    /// SCRAM binds it to this TLS session.
    fn password_without_binding(&self) -> Result<(), ReplError> {
        if self.login.channel_binding == BindingMode::Require {
            return Err(binding_refused(
                "channel binding required but not supported by server's authentication request",
            ));
        }
        Ok(())
    }

    fn password(&self) -> Result<Secret, ReplError> {
        self.login
            .password
            .clone()
            .ok_or(ReplError::PasswordRequired)
    }
}

/// libpq's words for a login that channel_binding=require refuses.
fn binding_refused(message: &str) -> ReplError {
    ReplError::Tls(tls::Failure {
        message: message.to_string(),
        hint: "channel_binding=require needs TLS and SCRAM: a hostssl line with scram-sha-256 for this standby in the primary's pg_hba.conf, a password stored as SCRAM (password_encryption = scram-sha-256), and PostgreSQL 11 or later there",
    })
}

/// Send SSLRequest; true when the server agrees to TLS ('S'), false
/// when it declines ('N').
async fn negotiate_tls(stream: &mut Watchdog<Stream>, limit: Duration) -> Result<bool, ReplError> {
    let mut out = BytesMut::new();
    frontend::ssl_request(&mut out);
    stream
        .write_all(&out)
        .await
        .map_err(|e| io_error(e, limit))?;
    let mut answer = [0u8; 1];
    stream
        .read_exact(&mut answer)
        .await
        .map_err(|e| io_error(e, limit))?;
    match answer[0] {
        b'S' => Ok(true),
        b'N' => Ok(false),
        other => Err(ReplError::Protocol(format!(
            "answer {:?} to the SSL request",
            other as char
        ))),
    }
}

/// Whether one try asks the server for TLS, and whether a "no" ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    No,
    Wanted,
    Required,
}

async fn handshake(
    stream: Watchdog<Stream>,
    config: &Arc<rustls::ClientConfig>,
    login: &Login<'_>,
) -> Result<tokio_rustls::client::TlsStream<Watchdog<Stream>>, ReplError> {
    let limit = login.answer_limit;
    let name = tls::server_name(login.tls_name).map_err(|message| {
        ReplError::Tls(tls::Failure {
            message,
            hint: "give host= as a DNS name or an IP address",
        })
    })?;
    tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, stream)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut => ReplError::NoAnswer { limit },
            _ => ReplError::Tls(tls::failure(&e).unwrap_or_else(|| tls::Failure {
                message: format!("SSL error: {e}"),
                hint: "check the primary's ssl settings and its log",
            })),
        })
}

fn server_error(body: &ErrorResponseBody) -> Result<ServerError, ReplError> {
    let fields: Vec<(u8, Vec<u8>)> = body
        .fields()
        .map(|f| Ok((f.type_(), f.value_bytes().to_vec())))
        .collect()
        .map_err(|e: io::Error| ReplError::Protocol(e.to_string()))?;
    Ok(ServerError::from_fields(
        fields.iter().map(|(k, v)| (*k, v.as_slice())),
    ))
}

/// The Watchdog's time-out is the server not answering; anything else
/// is a broken connection.
fn io_error(e: io::Error, limit: Duration) -> ReplError {
    if e.kind() == io::ErrorKind::TimedOut {
        ReplError::NoAnswer { limit }
    } else {
        ReplError::Io(e)
    }
}

fn unexpected(what: &str) -> ReplError {
    ReplError::Protocol(format!("unexpected {what}"))
}

/// "127.0.0.1:5432" or the socket path, for messages.
pub fn describe(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Tcp(h, p) if h.contains(':') => format!("[{h}]:{p}"),
        Endpoint::Tcp(h, p) => format!("{h}:{p}"),
        Endpoint::Unix(path) => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One read takes what the socket has, up to [`READ_CHUNK`], even when
    /// the buffer has no room left (a full `BytesMut` offers 64 bytes).
    #[tokio::test]
    async fn a_read_takes_a_whole_chunk() {
        let (client, mut server) = tokio::io::duplex(4 * READ_CHUNK);
        server.write_all(&vec![b'x'; 2 * READ_CHUNK]).await.unwrap();
        let mut conn = Connection {
            io: Box::new(client),
            buf: BytesMut::new(),
            origin: Origin::Local,
            answer_limit: Duration::from_secs(5),
        };
        conn.fill().await.unwrap();
        assert_eq!(conn.buf.len(), READ_CHUNK);
        conn.buf.clear();
        conn.fill().await.unwrap();
        assert_eq!(conn.buf.len(), READ_CHUNK);
    }

    /// A backend message: tag, length, body.
    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    /// A one-column, one-row answer (as SHOW gives) and its ReadyForQuery.
    fn one_value(value: &str) -> Vec<u8> {
        let mut field = b"v\0".to_vec();
        field.extend_from_slice(&[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 25, 255, 255, 255, 255, 255, 255, 0, 0,
        ]);
        let mut desc = 1i16.to_be_bytes().to_vec();
        desc.extend(field);
        let mut row = 1i16.to_be_bytes().to_vec();
        row.extend_from_slice(&(value.len() as i32).to_be_bytes());
        row.extend_from_slice(value.as_bytes());
        [
            message(b'T', &desc),
            message(b'D', &row),
            message(b'C', b"SHOW\0"),
            message(b'Z', b"I"),
        ]
        .concat()
    }

    /// The commands go out in one write before any answer is read: the
    /// fake server answers only once it has all three (a client waiting
    /// for each answer would never get one), and a failed command in the
    /// middle leaves the others' answers intact.
    #[tokio::test]
    async fn pipelined_commands_share_one_round_trip() {
        let (client, mut server) = tokio::io::duplex(READ_CHUNK);
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            while seen.iter().filter(|&&b| b == b'Q').count() < 3 {
                let mut chunk = [0u8; 256];
                let n = server.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the client closed before sending all commands");
                seen.extend_from_slice(&chunk[..n]);
            }
            let error = message(
                b'E',
                b"SERROR\0C42704\0Munrecognized configuration parameter\0\0",
            );
            let answer = [one_value("1"), error, message(b'Z', b"I"), one_value("3")].concat();
            server.write_all(&answer).await.unwrap();
            seen
        });
        let mut conn = Connection {
            io: Box::new(client),
            buf: BytesMut::new(),
            origin: Origin::Local,
            answer_limit: Duration::from_secs(5),
        };
        let commands = ["SHOW a", "SHOW nope", "SHOW c"];
        let answers = tokio::time::timeout(Duration::from_secs(5), conn.pipelined(&commands))
            .await
            .expect("the client waited for an answer before sending every command")
            .unwrap();
        let value = |r: &Result<Rows, ReplError>| r.as_ref().ok().map(|r| r.rows[0][0].clone());
        assert_eq!(value(&answers[0]), Some(Some(b"1".to_vec())));
        assert!(matches!(
            &answers[1],
            Err(ReplError::Server {
                stage: Stage::Command,
                ..
            })
        ));
        assert_eq!(value(&answers[2]), Some(Some(b"3".to_vec())));
        let seen = server.await.unwrap();
        assert!(seen.windows(9).any(|w| w == b"SHOW nope"));
    }
}
