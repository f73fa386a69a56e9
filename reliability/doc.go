// Package reliability owns the process-level tests of how the provider
// behaves when things go wrong or get busy: Redis or the database down or
// slow, a restart of `idp serve`, two instances behind one proxy, and
// hundreds of logins at once. The tests build the real binary, run it
// against a private redis-server, PostgreSQL and Redis found on 127.0.0.1
// (see internal/testenv), and drive it as a browser and a relying party
// would. The package has no code besides its tests.
package reliability
