! momentum: reads "mass,velocity" CSV rows (with a header line) on stdin and
! writes "mass,velocity,momentum" CSV on stdout, momentum = mass * velocity.
! Blank lines are skipped. A malformed row is reported on stderr with its line
! number, and the program exits with status 1 after reading all input.
program momentum
  use, intrinsic :: iso_fortran_env, only: input_unit, output_unit, error_unit, iostat_end, real64
  implicit none
  character(len=4096) :: line
  integer :: ios, lineno, nbad, comma
  real(real64) :: mass, velocity
  logical :: header_seen

  lineno = 0
  nbad = 0
  header_seen = .false.
  write (output_unit, '(a)') 'mass,velocity,momentum'
  do
    read (input_unit, '(a)', iostat=ios) line
    if (ios == iostat_end) exit
    if (ios /= 0) then
      write (error_unit, '(a,i0)') 'momentum: read error at line ', lineno + 1
      call exit(1)
    end if
    lineno = lineno + 1
    if (len_trim(line) == 0) cycle
    if (.not. header_seen) then
      header_seen = .true.
      cycle
    end if
    comma = index(line, ',')
    if (comma == 0) then
      call bad(lineno, line)
      cycle
    end if
    read (line(1:comma-1), *, iostat=ios) mass
    if (ios /= 0) then
      call bad(lineno, line)
      cycle
    end if
    read (line(comma+1:), *, iostat=ios) velocity
    if (ios /= 0) then
      call bad(lineno, line)
      cycle
    end if
    write (output_unit, '(a,",",a,",",a)') fmt(mass), fmt(velocity), fmt(mass * velocity)
  end do
  if (nbad > 0) then
    write (error_unit, '(a,i0,a)') 'momentum: ', nbad, ' malformed row(s)'
    call exit(1)
  end if

contains

  subroutine bad(n, text)
    integer, intent(in) :: n
    character(len=*), intent(in) :: text
    nbad = nbad + 1
    write (error_unit, '(a,i0,a,a,a)') 'momentum: line ', n, ': malformed row "', trim(text), '" (want mass,velocity)'
  end subroutine bad

  ! fmt prints a number compactly: up to 6 decimals, trailing zeros removed.
  function fmt(x) result(s)
    real(real64), intent(in) :: x
    character(len=:), allocatable :: s
    character(len=64) :: buf
    integer :: k
    write (buf, '(f0.6)') x
    s = trim(adjustl(buf))
    k = len(s)
    do while (k > 1 .and. s(k:k) == '0')
      k = k - 1
    end do
    if (s(k:k) == '.') k = k - 1
    s = s(1:k)
    if (s(1:1) == '.') s = '0' // s
    if (len(s) >= 2) then
      if (s(1:2) == '-.') s = '-0' // s(2:)
    end if
  end function fmt
end program momentum
