package identity

// SetKDFForTest replaces argon2id in every hash and verification until the
// returned function is called; f receives the real argon2id to delegate to.
func SetKDFForTest(f func(real func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte,
	password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte) (restore func()) {
	var k kdf = func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
		return f(argonIDKey, password, salt, time, memory, threads, keyLen)
	}
	idKeyHook.Store(&k)
	return func() { idKeyHook.Store(nil) }
}

// WaitReadyForTest returns once the start-up dummy hash is made, so the
// service's background hashing is over.
func (s *Service) WaitReadyForTest() { s.dummy() }
