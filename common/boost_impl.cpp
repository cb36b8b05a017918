// The single translation unit that compiles Asio, Asio.SSL and Beast. Everything else is
// built with BOOST_ASIO_SEPARATE_COMPILATION / BOOST_BEAST_SEPARATE_COMPILATION and links
// against this, so the heavy non-template parts are compiled once per build.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
